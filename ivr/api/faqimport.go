package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
)

// FAQ import API paths, as the seed names them.
const (
	FAQCreatePath = "/mogambo_api/nodes/faq/create/"
	FAQStatusPath = "/mogambo_api/nodes/faq/create/status/{task_id}/"
)

// FAQImportKind is the Kind of the tasks the FAQ import API creates.
const FAQImportKind = "faq_import"

// Statuses the FAQ import status API reports, in the seed's words.
const (
	FAQStatusInProgress = "In Progress"
	FAQStatusSuccess    = "Success"
	FAQStatusError      = "Error"
)

// FAQSuccessMessage is the status message of a finished import (the seed's).
const FAQSuccessMessage = "all nodes has been created successfully"

// maxDomainNameBytes caps the domain_name part.
const maxDomainNameBytes = 256

// multipartOverhead is what a request may carry beyond the CSV itself
// (part headers, boundaries, domain_name).
const multipartOverhead = 64 << 10

// FAQImportStore is what the FAQ import API and its worker use
// (store.Store).
type FAQImportStore interface {
	FindBusinessesByName(ctx context.Context, name string) ([]ivr.Business, error)
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	CreateTaskWithInput(ctx context.Context, t *ivr.Task, input []byte) error
	GetTask(ctx context.Context, id string) (ivr.Task, error)
	GetTaskInput(ctx context.Context, id string) ([]byte, error)
	UpdateTask(ctx context.Context, t ivr.Task) error
	FinishTask(ctx context.Context, t ivr.Task) error
	ClaimTask(ctx context.Context, kind, worker string, lease time.Duration) (ivr.Task, error)
	ExtendTaskLease(ctx context.Context, id, worker string, lease time.Duration) error
	ReleaseTask(ctx context.Context, id, worker string) error
	ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error)
}

// FAQImport serves the seed's FAQ node creation API: POST FAQCreatePath
// stores the uploaded CSV with a pending task and answers its id at once;
// [FAQImport.Run] applies the task in the background (one ReplaceFAQ
// transaction, so an import is never half-applied) and GET FAQStatusPath
// reports it. A task interrupted by a restart is run again from its stored
// CSV when Run starts.
type FAQImport struct {
	Store FAQImportStore
	// MaxBytes caps the uploaded CSV (413 above it); zero means
	// faq.DefaultMaxBytes.
	MaxBytes int64
	// NewID returns a new task id; nil means a random UUID.
	NewID  func() string
	Logger *slog.Logger
	// WorkerID names this worker in task claims ("" = a random id).
	WorkerID string
	// Lease is how long a claimed task is held between renewals (0 =
	// DefaultTaskLease).
	Lease time.Duration

	workerOnce sync.Once
	worker     string

	wakeOnce sync.Once
	wake     chan struct{}
}

// Errors of the FAQ import API, in the seed's words.
var (
	errFAQUnauthorized = Errorf(http.StatusUnauthorized, "Unauthorized Access or invalid token")
	errFAQForbidden    = Errorf(http.StatusForbidden, "Access Forbidden")
	errFAQDomain       = Errorf(http.StatusBadRequest, "invalid domain")
	errFAQUnknownTask  = Errorf(http.StatusNotFound, "unknown task_id")
)

// faqBadBody is the seed's 400 with what was wrong.
func faqBadBody(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "Invalid or bad request body: "+format, args...)
}

// Routes registers the FAQ import endpoints on r.
func (f *FAQImport) Routes(r *mux.Router) {
	r.HandleFunc(FAQCreatePath, f.create).Methods(http.MethodPost)
	r.HandleFunc(FAQStatusPath, f.status).Methods(http.MethodGet)
}

func (f *FAQImport) maxBytes() int64 {
	if f.MaxBytes > 0 {
		return f.MaxBytes
	}
	return faq.DefaultMaxBytes
}

func (f *FAQImport) wakeCh() chan struct{} {
	f.wakeOnce.Do(func() { f.wake = make(chan struct{}, 1) })
	return f.wake
}

// notify wakes the worker without blocking.
func (f *FAQImport) notify() {
	select {
	case f.wakeCh() <- struct{}{}:
	default:
	}
}

// faqCredentials reads the Authorization and client-id headers; either
// missing is the seed's 401.
func faqCredentials(r *http.Request) (credentials, error) {
	tok, ok := BearerToken(r)
	clientID := strings.TrimSpace(r.Header.Get("client-id"))
	if !ok || clientID == "" {
		return credentials{}, errFAQUnauthorized
	}
	return credentials{token: tok, clientID: clientID}, nil
}

// authorize checks the credentials against b in constant time: a wrong
// token is 401, a wrong client id or an inactive business 403.
func authorize(b ivr.Business, cred credentials) error {
	if !ivr.TokenMatches(b.TokenHash, cred.token) {
		return errFAQUnauthorized
	}
	if subtle.ConstantTimeCompare([]byte(b.ClientID), []byte(cred.clientID)) != 1 || !b.Active {
		return errFAQForbidden
	}
	return nil
}

// FAQCreateResponse is the seed's answer to a submitted CSV.
type FAQCreateResponse struct {
	Success bool           `json:"success"`
	Body    FAQCreateBody  `json:"body"`
	Error   string         `json:"error"`
	Meta    map[string]any `json:"meta"`
}

// FAQCreateBody carries the task id to poll.
type FAQCreateBody struct {
	TaskID string `json:"task_id"`
}

// FAQStatusResponse is the answer of the status API.
type FAQStatusResponse struct {
	// Success is false when the import failed (Body.Status is Error).
	Success bool           `json:"success"`
	Body    FAQStatusBody  `json:"body"`
	Error   string         `json:"error"`
	Meta    map[string]any `json:"meta"`
}

// FAQStatusBody is a task's state.
type FAQStatusBody struct {
	// Status is In Progress, Success or Error.
	Status string `json:"status"`
	// Message is the seed's success sentence, or the first problem
	// ("line 7: node_name is empty").
	Message string `json:"message,omitempty"`
	// Errors lists every problem found (Error only).
	Errors []string `json:"errors,omitempty"`
	// Done and Total count the rows validated so far and in the file.
	Done  int `json:"done"`
	Total int `json:"total"`
}

func (f *FAQImport) create(w http.ResponseWriter, r *http.Request) {
	if err := f.serveCreate(w, r); err != nil {
		Fail(w, r, f.Logger, "faq import failed", err)
	}
}

func (f *FAQImport) serveCreate(w http.ResponseWriter, r *http.Request) error {
	cred, err := faqCredentials(r)
	if err != nil {
		return err
	}
	domain, csv, err := f.readUpload(w, r)
	if err != nil {
		return err
	}
	candidates, err := f.Store.FindBusinessesByName(r.Context(), domain)
	if err != nil {
		return fmt.Errorf("find domain: %w", err)
	}
	if len(candidates) == 0 {
		return errFAQDomain
	}
	// Several businesses may share a name: the credentials pick one.
	authErr := error(errFAQUnauthorized)
	var b ivr.Business
	for _, c := range candidates {
		switch err := authorize(c, cred); {
		case err == nil:
			b, authErr = c, nil
		case errors.Is(err, errFAQForbidden) && authErr != nil:
			authErr = err
		}
		if authErr == nil {
			break
		}
	}
	if authErr != nil {
		return authErr
	}

	newID := f.NewID
	if newID == nil {
		newID = newUUID
	}
	task := ivr.Task{ID: newID(), BusinessID: b.ID, Kind: FAQImportKind, Status: ivr.TaskPending}
	if err := f.Store.CreateTaskWithInput(r.Context(), &task, csv); err != nil {
		return fmt.Errorf("create faq import task: %w", err)
	}
	f.notify()
	WriteJSON(w, http.StatusOK, FAQCreateResponse{Success: true, Body: FAQCreateBody{TaskID: task.ID}, Meta: map[string]any{}})
	return nil
}

// readUpload reads the multipart body: exactly one domain_name and one
// non-empty csv_file, nothing else, the file at most maxBytes (413).
func (f *FAQImport) readUpload(w http.ResponseWriter, r *http.Request) (string, []byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", nil, Errorf(http.StatusUnsupportedMediaType, "Invalid or bad request body: content type must be multipart/form-data with a boundary")
	}
	limit := f.maxBytes()
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit+multipartOverhead), params["boundary"])
	tooLarge := Errorf(http.StatusRequestEntityTooLarge, "Invalid or bad request body: csv_file is larger than %d bytes", limit)
	var (
		domain           string
		csv              []byte
		haveDom, haveCSV bool
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, uploadError(err, tooLarge)
		}
		switch name := part.FormName(); name {
		case "domain_name":
			if haveDom {
				return "", nil, faqBadBody("domain_name appears twice")
			}
			v, err := readPart(part, maxDomainNameBytes)
			if err != nil {
				return "", nil, uploadError(err, faqBadBody("domain_name is longer than %d bytes", maxDomainNameBytes))
			}
			domain, haveDom = strings.TrimSpace(string(v)), true
		case "csv_file":
			if haveCSV {
				return "", nil, faqBadBody("csv_file appears twice")
			}
			csv, err = readPart(part, limit)
			if err != nil {
				return "", nil, uploadError(err, tooLarge)
			}
			haveCSV = true
		default:
			return "", nil, faqBadBody("unknown part %q (want domain_name and csv_file)", truncateRunes(name, 40))
		}
	}
	switch {
	case !haveDom || domain == "":
		return "", nil, faqBadBody("domain_name missing")
	case !utf8.ValidString(domain) || strings.ContainsFunc(domain, isControl):
		return "", nil, faqBadBody("domain_name is not valid text")
	case !haveCSV:
		return "", nil, faqBadBody("csv_file missing")
	case len(csv) == 0:
		return "", nil, faqBadBody("csv_file is empty")
	}
	return domain, csv, nil
}

// errPartTooLong marks a part over its cap.
var errPartTooLong = errors.New("part too long")

// readPart reads a part whole, failing with errPartTooLong above max.
func readPart(p *multipart.Part, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errPartTooLong
	}
	return data, nil
}

// uploadError maps a multipart read error: the body cap or the part's
// cap answer tooLong, anything else is a malformed body.
func uploadError(err error, tooLong *Error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, "%s", tooLong.Message)
	case errors.Is(err, errPartTooLong):
		return tooLong
	default:
		return faqBadBody("malformed multipart body")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func truncateRunes(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (f *FAQImport) status(w http.ResponseWriter, r *http.Request) {
	if err := f.serveStatus(w, r); err != nil {
		Fail(w, r, f.Logger, "faq import status failed", err)
	}
}

func (f *FAQImport) serveStatus(w http.ResponseWriter, r *http.Request) error {
	cred, err := faqCredentials(r)
	if err != nil {
		return err
	}
	id := mux.Vars(r)["task_id"]
	if !validTaskID(id) {
		return errFAQUnknownTask
	}
	t, err := f.Store.GetTask(r.Context(), id)
	if errors.Is(err, ivr.ErrNotFound) || (err == nil && t.Kind != FAQImportKind) {
		return errFAQUnknownTask
	}
	if err != nil {
		return fmt.Errorf("get task: %w", err)
	}
	b, err := f.Store.GetBusiness(r.Context(), t.BusinessID)
	if errors.Is(err, ivr.ErrNotFound) {
		return errFAQUnknownTask
	}
	if err != nil {
		return fmt.Errorf("get business: %w", err)
	}
	if err := authorize(b, cred); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, statusResponse(t))
	return nil
}

// statusResponse turns a task into the status API's answer.
func statusResponse(t ivr.Task) FAQStatusResponse {
	resp := FAQStatusResponse{Success: true, Meta: map[string]any{},
		Body: FAQStatusBody{Status: FAQStatusInProgress, Done: t.Done, Total: t.Total}}
	switch t.Status {
	case ivr.TaskComplete:
		resp.Body.Status, resp.Body.Message = FAQStatusSuccess, FAQSuccessMessage
	case ivr.TaskFailed:
		resp.Success = false
		resp.Body.Status = FAQStatusError
		resp.Body.Errors = t.Errors
		if len(t.Errors) > 0 {
			resp.Body.Message = t.Errors[0]
		}
		resp.Error = resp.Body.Message
	}
	return resp
}

// validTaskID accepts the ids koel hands out: 1 to 64 of [0-9a-zA-Z-].
func validTaskID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
