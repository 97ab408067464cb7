package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
)

// History serves the chat transcript APIs:
// GET /integration/external/v1.0/get_chat_history/ and
// GET /integration/external/v2.0/get_chat_history/.
type History struct {
	Store  HandoffStore
	Logger *slog.Logger
}

// History paths of the seed.
const (
	HistoryV1Path = "/integration/external/v1.0/get_chat_history/"
	HistoryV2Path = "/integration/external/v2.0/get_chat_history/"
)

// MaxHistoryLimit caps limit.
const MaxHistoryLimit = 10000

// Routes registers both versions on r.
func (h *History) Routes(r *mux.Router) {
	r.HandleFunc(HistoryV1Path, h.v1).Methods(http.MethodGet)
	r.HandleFunc(HistoryV2Path, h.v2).Methods(http.MethodGet)
}

// ChatLine is one message of a JSON transcript.
type ChatLine struct {
	Text      string `json:"text"`
	Sender    string `json:"sender"`
	MessageID int64  `json:"message_id"`
	Timestamp string `json:"timestamp"`
}

// HistoryTime formats a message time as the seed does: 06/22/20 07:24:25 AM UTC.
const HistoryTime = "01/02/06 03:04:05 PM UTC"

// historyQuery is a parsed, validated transcript request.
type historyQuery struct {
	businessID     int64
	userName       string
	conversationNo int64
	limit          int
	text           bool
}

// commonParams reads limit and response_type (the seed's v1 spells it
// respose_type too).
func commonParams(q map[string][]string) (limit int, text bool, err error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	if s := get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 0 || n > MaxHistoryLimit {
			return 0, false, Errorf(http.StatusBadRequest, "limit must be a whole number from 0 to %d", MaxHistoryLimit)
		}
		limit = n
	}
	rt := get("response_type")
	if rt == "" {
		rt = get("respose_type")
	}
	switch strings.ToLower(rt) {
	case "", "json":
	case "text":
		text = true
	default:
		return 0, false, Errorf(http.StatusBadRequest, "response_type must be json or text")
	}
	return limit, text, nil
}

func param(r *http.Request, k string) string { return strings.TrimSpace(r.URL.Query().Get(k)) }

func historyCredentials(r *http.Request, badClient, badToken error) (credentials, error) {
	clientID := strings.TrimSpace(r.Header.Get("client-id"))
	tok, ok := BearerToken(r)
	if clientID == "" {
		return credentials{}, badClient
	}
	if !ok {
		return credentials{}, badToken
	}
	return credentials{token: tok, clientID: clientID}, nil
}

func (h *History) v1(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		badClient := Errorf(http.StatusUnauthorized, "invalid client_id")
		badToken := Errorf(http.StatusUnauthorized, "invalid token")
		cred, err := historyCredentials(r, badClient, badToken)
		if err != nil {
			return err
		}
		q := historyQuery{userName: param(r, "user_name")}
		bid, cno := param(r, "business_id"), param(r, "conversation_no")
		switch {
		case q.userName == "":
			return Errorf(http.StatusBadRequest, "user_name missing")
		case bid == "":
			return Errorf(http.StatusBadRequest, "business_id missing")
		case cno == "":
			return Errorf(http.StatusBadRequest, "conversation_no missing")
		}
		if q.businessID, err = strconv.ParseInt(bid, 10, 64); err != nil || q.businessID <= 0 {
			return Errorf(http.StatusBadRequest, "invalid business_id")
		}
		if q.conversationNo, err = strconv.ParseInt(cno, 10, 64); err != nil || q.conversationNo <= 0 {
			return Errorf(http.StatusBadRequest, "invalid conversation_no")
		}
		if q.limit, q.text, err = commonParams(r.URL.Query()); err != nil {
			return err
		}
		if _, err := checkBusiness(r.Context(), h.Store, q.businessID, cred, badToken, badClient, badToken); err != nil {
			return err
		}
		p, err := FindPerson(r.Context(), h.Store, q.businessID, q.userName)
		if err != nil {
			return err
		}
		if len(p.Users) == 0 {
			return Errorf(http.StatusNotFound, "invalid user_name")
		}
		msgs, ok, err := h.transcript(r.Context(), p, q)
		if err != nil {
			return err
		}
		if !ok {
			return Errorf(http.StatusNotFound, "user has not sent a message")
		}
		writeTranscript(w, msgs, q.text, func(s string) string { return s })
		return nil
	}()
	if err != nil {
		Fail(w, r, h.Logger, "chat history failed", err)
	}
}

// Errors of v2, in the seed's words.
const (
	v2NoGroup      = "Argument group validation: no valid group."
	v2InvalidGroup = "Argument group validation: invalid group found."
	v2NotFound     = "Either the user has not sent a message yet, or the provided user_name-business_id pair is invalid."
	v2BadPXUT      = "Unable to decode pxut-client_id pair"
	v2Unknown      = "An unknown error occurred"
)

// GroupError is a v2 argument group failure with its details.
type GroupError struct {
	Message string
	// Details names, per group, what is missing or mistyped.
	Details map[string][]string
}

func (e *GroupError) Error() string { return e.Message }

// HTTPStatus implements ivr.HTTPStatuser.
func (e *GroupError) HTTPStatus() (int, string) { return http.StatusBadRequest, e.Message }

func (h *History) v2(w http.ResponseWriter, r *http.Request) {
	err := h.serveV2(w, r)
	if err == nil {
		return
	}
	var ge *GroupError
	if errors.As(err, &ge) {
		WriteJSON(w, http.StatusBadRequest, map[string]any{"error_message": ge.Message, "details": ge.Details})
		return
	}
	if status, _ := ivr.HTTPStatus(err); status >= 500 {
		if h.Logger != nil {
			h.Logger.ErrorContext(r.Context(), "chat history failed", "error", err)
		}
		WriteJSON(w, http.StatusInternalServerError, ErrorBody{ErrorMessage: v2Unknown})
		return
	}
	WriteError(w, err)
}

func (h *History) serveV2(w http.ResponseWriter, r *http.Request) error {
	badToken := Errorf(http.StatusUnauthorized, "Invalid token")
	cred, err := historyCredentials(r, badToken, badToken)
	if err != nil {
		return err
	}
	bid, user, pxut, cno := param(r, "business_id"), param(r, "user_name"), param(r, "pxut"), param(r, "conversation_no")
	missing := map[string][]string{}
	need := func(group, name, v string) {
		if v == "" {
			missing[group] = append(missing[group], name+" is required")
		}
	}
	need("group_1", "business_id", bid)
	need("group_1", "user_name", user)
	need("group_1", "conversation_no", cno)
	need("group_2", "pxut", pxut)
	need("group_2", "conversation_no", cno)
	group := 0
	switch {
	case len(missing["group_1"]) == 0:
		group = 1
	case len(missing["group_2"]) == 0:
		group = 2
	default:
		return &GroupError{Message: v2NoGroup, Details: missing}
	}
	q := historyQuery{userName: user}
	if q.conversationNo, err = strconv.ParseInt(cno, 10, 64); err != nil || q.conversationNo <= 0 {
		return &GroupError{Message: v2InvalidGroup, Details: map[string][]string{
			fmt.Sprintf("group_%d", group): {"conversation_no must be a positive integer"}}}
	}
	if q.limit, q.text, err = commonParams(r.URL.Query()); err != nil {
		return err
	}
	if group == 1 {
		if q.businessID, err = strconv.ParseInt(bid, 10, 64); err != nil || q.businessID <= 0 {
			return Errorf(http.StatusBadRequest, "Invalid business_id")
		}
		if _, err := checkBusiness(r.Context(), h.Store, q.businessID, cred, badToken, badToken, badToken); err != nil {
			return err
		}
	} else {
		bizID, name, ok := splitPXUT(pxut)
		if !ok {
			return Errorf(http.StatusBadRequest, "%s", v2BadPXUT)
		}
		b, err := h.Store.GetBusiness(r.Context(), bizID)
		if errors.Is(err, ivr.ErrNotFound) {
			return Errorf(http.StatusBadRequest, "%s", v2BadPXUT)
		}
		if err != nil {
			return fmt.Errorf("get business: %w", err)
		}
		if !ivr.TokenMatches(b.TokenHash, cred.token) {
			return badToken
		}
		if !hmac.Equal([]byte(pxut), []byte(PXUT(b, cred.clientID, name))) || b.ClientID != cred.clientID {
			return Errorf(http.StatusBadRequest, "%s", v2BadPXUT)
		}
		q.businessID, q.userName = bizID, name
	}
	p, err := FindPerson(r.Context(), h.Store, q.businessID, q.userName)
	if err != nil {
		return err
	}
	msgs, ok, err := h.transcript(r.Context(), p, q)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(http.StatusNotFound, "%s", v2NotFound)
	}
	// v2 names an agent by the agent's name alone.
	writeTranscript(w, msgs, q.text, func(s string) string {
		if strings.HasPrefix(s, "agent(") && strings.HasSuffix(s, ")") {
			return s[len("agent(") : len(s)-1]
		}
		return s
	})
	return nil
}

// PXUT returns the packed user token of userName in business b for the
// integrator with clientID: base64url("<business_id>:<user_name>") "."
// base64url(HMAC-SHA256 over "<client_id>." and that first part, keyed
// with the SHA-256 of the business's API token). An integrator holding the
// token computes the same; without it a pxut cannot be forged, and one made
// for another client id does not decode.
func PXUT(b ivr.Business, clientID, userName string) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(b.ID, 10) + ":" + userName))
	mac := hmac.New(sha256.New, b.TokenHash)
	mac.Write([]byte(clientID + "." + payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func splitPXUT(p string) (int64, string, bool) {
	if len(p) > 2048 {
		return 0, "", false
	}
	payload, _, ok := strings.Cut(p, ".")
	if !ok {
		return 0, "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return 0, "", false
	}
	id, name, ok := strings.Cut(string(raw), ":")
	if !ok || name == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || ivr.CheckText("user_name", name, ivr.MaxExternalIDBytes) != nil {
		return 0, "", false
	}
	return n, name, true
}

// transcript returns the messages of the person's conversation q.conversationNo
// (numbered over all their channels, see [Person.Timeline]); ok is false when
// there is no such conversation or the user never wrote in it.
func (h *History) transcript(ctx context.Context, p Person, q historyQuery) ([]ivr.Message, bool, error) {
	if len(p.Users) == 0 {
		return nil, false, nil
	}
	tl, err := p.Timeline(ctx, h.Store)
	if err != nil {
		return nil, false, err
	}
	if q.conversationNo > int64(len(tl)) {
		return nil, false, nil
	}
	conv := tl[q.conversationNo-1]
	all, err := h.Store.ListMessages(ctx, conv.ID, 0)
	if err != nil {
		return nil, false, fmt.Errorf("list messages: %w", err)
	}
	wrote := false
	for _, m := range all {
		wrote = wrote || m.Sender == ivr.SenderUser
	}
	if !wrote {
		return nil, false, nil
	}
	if q.limit > 0 && len(all) > q.limit {
		all = all[len(all)-q.limit:]
	}
	return all, true, nil
}

func writeTranscript(w http.ResponseWriter, msgs []ivr.Message, text bool, sender func(string) string) {
	if text {
		var b strings.Builder
		for _, m := range msgs {
			b.WriteString(sender(m.Sender))
			b.WriteString(": ")
			b.WriteString(m.Text)
			b.WriteByte('\n')
		}
		WriteJSON(w, http.StatusOK, map[string]string{"chat_text": b.String()})
		return
	}
	lines := make([]ChatLine, 0, len(msgs))
	for _, m := range msgs {
		lines = append(lines, ChatLine{Text: m.Text, Sender: sender(m.Sender), MessageID: m.ID,
			Timestamp: m.CreatedAt.UTC().Format(HistoryTime)})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"chat_json": lines})
}
