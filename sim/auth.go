package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Link tokens: "v1.<payload>.<mac>", payload = base64url("<unix expiry>:<connection>"),
// mac = base64url(HMAC-SHA256(key, "v1."+payload)), key derived from Config.Token.
const (
	linkVersion    = "v1"
	defaultLinkTTL = 15 * time.Minute
	maxLinkTTL     = 24 * time.Hour
	maxTokenBytes  = 512
	// maxLimitedClients caps the per-address limiters kept; idle ones are
	// swept when the cap is reached.
	maxLimitedClients = 10000
	limiterIdle       = 10 * time.Minute
)

// authorize lets an offer through in development mode (Config.Open), or
// with the bearer token, or with a link token that is unexpired and made
// for the offer's connection. Tokens are compared in constant time.
func (s *Sim) authorize(r *http.Request, connection string) error {
	if s.cfg.Open {
		return nil
	}
	if s.cfg.Token == "" {
		return fmt.Errorf("%w: the softphone needs development mode (KOEL_DEV=1) or a sim token (KOEL_SIM_TOKEN)", ErrUnauthorized)
	}
	tok, ok := bearer(r)
	if !ok {
		return fmt.Errorf("%w: give Authorization: Bearer <sim token or link token>", ErrUnauthorized)
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1 {
		return nil
	}
	linkConn, err := s.verifyLink(tok, time.Now())
	if err != nil {
		return err
	}
	if connection == "" || linkConn != connection {
		return fmt.Errorf("%w: the link is for another connection", ErrUnauthorized)
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != "" && len(tok) <= maxTokenBytes
}

func (s *Sim) linkKey() []byte {
	k := sha256.Sum256([]byte("koel-sim-link\x00" + s.cfg.Token))
	return k[:]
}

// SignLink makes a link token for calls to connection until now+ttl
// (default 15 minutes, at most 24 hours). It reports false when the Sim has
// no Config.Token to sign with.
func (s *Sim) SignLink(connection string, ttl time.Duration, now time.Time) (string, time.Time, bool) {
	if s.cfg.Token == "" {
		return "", time.Time{}, false
	}
	if ttl <= 0 {
		ttl = defaultLinkTTL
	}
	ttl = min(ttl, maxLinkTTL)
	exp := now.Add(ttl).Truncate(time.Second)
	payload := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(exp.Unix(), 10) + ":" + connection))
	return linkVersion + "." + payload + "." + s.linkMAC(payload), exp, true
}

func (s *Sim) linkMAC(payload string) string {
	m := hmac.New(sha256.New, s.linkKey())
	m.Write([]byte(linkVersion + "." + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyLink checks a link token and returns its connection.
func (s *Sim) verifyLink(tok string, now time.Time) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != linkVersion {
		return "", fmt.Errorf("%w: invalid token", ErrUnauthorized)
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.linkMAC(parts[1]))) {
		return "", fmt.Errorf("%w: invalid token", ErrUnauthorized)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: invalid token", ErrUnauthorized)
	}
	expS, conn, ok := strings.Cut(string(raw), ":")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("%w: invalid token", ErrUnauthorized)
	}
	if now.Unix() >= exp {
		return "", fmt.Errorf("%w: the link expired", ErrUnauthorized)
	}
	return conn, nil
}

// handleLink answers GET /sim/link?connection=ID[&ttl=15m] for a holder
// of the sim token: {"url": "<page URL with the link token>", "token",
// "expires_at"}. The page sends the token with its offer.
func (s *Sim) handleLink(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if s.cfg.Token == "" || !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1 {
		httpError(w, fmt.Errorf("%w: links are made with Authorization: Bearer <sim token>", ErrUnauthorized))
		return
	}
	q := r.URL.Query()
	conn := q.Get("connection")
	if !connectionPattern.MatchString(conn) {
		httpError(w, fmt.Errorf("%w: connection %q is not a valid identifier", ErrBadRequest, conn))
		return
	}
	var ttl time.Duration
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxLinkTTL {
			httpError(w, fmt.Errorf("%w: ttl %q is not a duration up to %v", ErrBadRequest, v, maxLinkTTL))
			return
		}
		ttl = d
	}
	if s.cfg.CheckConnection != nil {
		if err := s.cfg.CheckConnection(r.Context(), conn); err != nil {
			httpError(w, err)
			return
		}
	}
	link, exp, _ := s.SignLink(conn, ttl, time.Now())
	u := s.cfg.PublicBaseURL + "/sim/?" + url.Values{"connection": {conn}, "t": {link}}.Encode()
	writeJSON(w, http.StatusOK, map[string]string{"url": u, "token": link, "expires_at": exp.UTC().Format(time.RFC3339)})
}

// clientAddr is the client's IP address, from the connection (a
// forwarded-for header is not trusted: anyone can send one).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// offerLimits is a token bucket per client address.
type offerLimits struct {
	perMinute int
	now       func() time.Time

	mu      sync.Mutex
	clients map[string]*limitedClient
}

type limitedClient struct {
	lim  *rate.Limiter
	seen time.Time
}

func newOfferLimits(perMinute int, now func() time.Time) *offerLimits {
	return &offerLimits{perMinute: perMinute, now: now, clients: map[string]*limitedClient{}}
}

// allow takes one offer from addr's bucket: perMinute a minute, bursts of
// up to half of that (at least 1).
func (l *offerLimits) allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c, ok := l.clients[addr]
	if !ok {
		if len(l.clients) >= maxLimitedClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > limiterIdle {
					delete(l.clients, k)
				}
			}
			if len(l.clients) >= maxLimitedClients {
				return false
			}
		}
		c = &limitedClient{lim: rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), max(1, l.perMinute/2))}
		l.clients[addr] = c
	}
	c.seen = now
	return c.lim.AllowN(now, 1)
}
