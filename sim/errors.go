package sim

import "errors"

// appEndedMessage tells the developer why a call without further verbs
// ended.
const appEndedMessage = "the app returned no further verbs; the call ends"

var (
	// ErrTooManyCalls is returned (and answered with 503) when the
	// concurrent call cap is reached.
	ErrTooManyCalls = errors.New("sim: too many concurrent calls")
	// ErrBadOffer means the SDP offer could not be parsed or applied.
	ErrBadOffer = errors.New("sim: malformed SDP offer")
	// ErrNoAudio means the offer has no audio section carrying PCMU.
	ErrNoAudio = errors.New("sim: offer has no PCMU audio")
	// ErrBadRequest means an offer request is invalid (settings, app,
	// connection name).
	ErrBadRequest = errors.New("sim: bad request")
	// ErrURLNotAllowed means the URL policy refused a URL.
	ErrURLNotAllowed = errors.New("sim: url not allowed")
	// ErrClosed is returned after [Sim.Close].
	ErrClosed = errors.New("sim: closed")
	// ErrDraining refuses new calls after [Sim.Drain] (503).
	ErrDraining = errors.New("sim: draining: not taking new calls")
	// ErrUnauthorized refuses an offer without a valid token outside
	// development mode (401).
	ErrUnauthorized = errors.New("sim: unauthorized")
	// ErrRateLimited refuses a client over its offer rate (429).
	ErrRateLimited = errors.New("sim: too many offers")
	// ErrUnknownConnection refuses an offer for a connection that does not
	// exist (404). [Config.CheckConnection] returns it (wrapped).
	ErrUnknownConnection = errors.New("sim: unknown connection")
	// ErrUnsupportedMedia refuses an offer that is not JSON (415).
	ErrUnsupportedMedia = errors.New("sim: unsupported media type")
	// ErrAppEnded is the cause of a call whose app returned nothing left
	// to do: KooKoo ends such a call.
	ErrAppEnded = errors.New("sim: " + appEndedMessage)
	// ErrApp means the KooKoo app failed: a transport error, a non-2xx
	// status, a timeout, an oversize body or invalid XML.
	ErrApp = errors.New("sim: kookoo app failed")
	// ErrAudio means an audio file (playaudio, --wav) could not be fetched
	// or decoded.
	ErrAudio = errors.New("sim: audio")
	// ErrCallerHangup is the cause of a call that the caller ended.
	ErrCallerHangup = errors.New("sim: caller hung up")
	// ErrAppHangup is the cause of a call that the app ended with <hangup/>.
	ErrAppHangup = errors.New("sim: app hung up")
	// ErrMediaFailed is the cause of a call whose media leg failed (ICE
	// failure or timeout).
	ErrMediaFailed = errors.New("sim: media failed")
	// ErrCallFailed is returned by the CLI when the call did not complete
	// as expected.
	ErrCallFailed = errors.New("sim: call failed")
)
