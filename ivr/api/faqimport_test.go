package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// faqCreds are the headers of one business.
type faqCreds struct{ token, clientID string }

var (
	acme   = faqCreds{"tok-acme", "client-acme"}
	acme2  = faqCreds{"tok-acme-2", "client-acme-2"} // a second business named "acme"
	sleepy = faqCreds{"tok-sleepy", "client-sleepy"}
)

// seedFAQBusinesses creates acme (1), sleepy (2, inactive) and a second
// acme (3).
func seedFAQBusinesses(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, b := range []*ivr.Business{
		{ID: 1, Name: "acme", TokenHash: ivr.HashToken(acme.token), ClientID: acme.clientID, Active: true},
		{ID: 2, Name: "sleepy", TokenHash: ivr.HashToken(sleepy.token), ClientID: sleepy.clientID, Active: false},
		{ID: 3, Name: "acme", TokenHash: ivr.HashToken(acme2.token), ClientID: acme2.clientID, Active: true},
	} {
		if err := st.CreateBusiness(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
}

type faqFixture struct {
	st  store.Store
	imp *api.FAQImport
	srv *httptest.Server
}

// newFAQFixture serves the FAQ import API on loopback; run starts its
// worker until the test ends.
func newFAQFixture(t *testing.T, st store.Store, maxBytes int64, run bool) *faqFixture {
	t.Helper()
	imp := &api.FAQImport{Store: st, MaxBytes: maxBytes}
	r := mux.NewRouter()
	imp.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	f := &faqFixture{st: st, imp: imp, srv: srv}
	if run {
		f.runWorker(t)
	}
	return f
}

func (f *faqFixture) runWorker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.imp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

// part is one multipart part; file marks a file part.
type part struct {
	name, value string
	file        bool
}

func multipartBody(t testing.TB, parts []part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file {
			w, err = mw.CreateFormFile(p.name, "faq.csv")
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, p.value)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func setCreds(req *http.Request, c faqCreds) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.clientID != "" {
		req.Header.Set("client-id", c.clientID)
	}
}

func decodeBody(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %d answer: %v", resp.StatusCode, err)
	}
}

// submit posts a CSV for domain and returns the task id.
func (f *faqFixture) submit(t *testing.T, c faqCreds, domain, csv string) string {
	t.Helper()
	ct, body := multipartBody(t, []part{{"domain_name", domain, false}, {"csv_file", csv, true}})
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+api.FAQCreatePath, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	setCreds(req, c)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out api.FAQCreateResponse
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorBody
		decodeBody(t, resp, &e)
		t.Fatalf("submit: %d %q", resp.StatusCode, e.ErrorMessage)
	}
	decodeBody(t, resp, &out)
	if !out.Success || out.Error != "" || out.Meta == nil || len(out.Body.TaskID) != 36 {
		t.Fatalf("submit answer = %+v", out)
	}
	return out.Body.TaskID
}

func (f *faqFixture) getStatus(t *testing.T, c faqCreds, id string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/mogambo_api/nodes/faq/create/status/"+id+"/", nil)
	setCreds(req, c)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// wait polls the task's status until it is no longer In Progress or the
// deadline passes.
func (f *faqFixture) wait(t *testing.T, c faqCreds, id string, within time.Duration) api.FAQStatusResponse {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		code, raw := f.getStatus(t, c, id)
		if code != http.StatusOK {
			t.Fatalf("status: %d %s", code, raw)
		}
		var s api.FAQStatusResponse
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		if s.Body.Status != api.FAQStatusInProgress {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still In Progress after %v (%d/%d rows)", id, within, s.Body.Done, s.Body.Total)
		}
		<-tick.C
	}
}

func faqVersion(t *testing.T, st store.Store, id int64) int64 {
	t.Helper()
	b, err := st.GetBusiness(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b.FAQVersion
}

func openTasks(t *testing.T, st store.Store) []ivr.Task {
	t.Helper()
	l, err := st.ListTasks(context.Background(), api.FAQImportKind, []ivr.TaskStatus{ivr.TaskPending, ivr.TaskRunning, ivr.TaskComplete, ivr.TaskFailed})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// faqBackends are the stores the import runs on.
var faqBackends = []struct {
	name string
	open func(testing.TB, ...store.Option) store.Store
}{{"sqlite", storetest.NewSQLite}, {"postgres", storetest.NewPostgres}}

const twoNodes = "node_name,user_says,bot_says\nhours,when are you open|opening hours,We open at 9.\nrefund,how do I get a refund,Refunds take 5 days.\n"

// TestFAQImportCreateErrors answers every error of the seed's FAQ section
// (401 Unauthorized Access or invalid token, 400 Invalid or bad request
// body, 403 Access Forbidden, the "invalid domain" example) and the caps,
// and stores no task for any of them.
func TestFAQImportCreateErrors(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	f := newFAQFixture(t, st, 1024, false)
	good := []part{{"domain_name", "acme", false}, {"csv_file", twoNodes, true}}
	cases := []struct {
		name   string
		parts  []part
		raw    string // a raw body instead of parts
		ct     string // overrides the multipart content type
		creds  faqCreds
		auth   string // a raw Authorization header
		status int
		msg    string
	}{
		{name: "no authorization", parts: good, creds: faqCreds{"", acme.clientID}, status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "not bearer", parts: good, creds: faqCreds{"", acme.clientID}, auth: "Basic dG9rLWFjbWU=", status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "empty bearer", parts: good, creds: faqCreds{"", acme.clientID}, auth: "Bearer ", status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "no client-id", parts: good, creds: faqCreds{acme.token, ""}, status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "wrong token", parts: good, creds: faqCreds{"tok-wrong", acme.clientID}, status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "another domain's token", parts: []part{{"domain_name", "sleepy", false}, {"csv_file", twoNodes, true}}, creds: acme, status: 401, msg: "Unauthorized Access or invalid token"},
		{name: "wrong client-id", parts: good, creds: faqCreds{acme.token, "client-other"}, status: 403, msg: "Access Forbidden"},
		{name: "inactive business", parts: []part{{"domain_name", "sleepy", false}, {"csv_file", twoNodes, true}}, creds: sleepy, status: 403, msg: "Access Forbidden"},
		{name: "unknown domain", parts: []part{{"domain_name", "nobody", false}, {"csv_file", twoNodes, true}}, creds: acme, status: 400, msg: "invalid domain"},
		{name: "json content type", raw: `{"domain_name":"acme"}`, ct: "application/json", creds: acme, status: 415, msg: "Invalid or bad request body: content type must be multipart/form-data with a boundary"},
		{name: "multipart without boundary", raw: "x", ct: "multipart/form-data", creds: acme, status: 415, msg: "Invalid or bad request body: content type must be multipart/form-data with a boundary"},
		{name: "no domain_name", parts: []part{{"csv_file", twoNodes, true}}, creds: acme, status: 400, msg: "Invalid or bad request body: domain_name missing"},
		{name: "blank domain_name", parts: []part{{"domain_name", "  ", false}, {"csv_file", twoNodes, true}}, creds: acme, status: 400, msg: "Invalid or bad request body: domain_name missing"},
		{name: "control character in domain_name", parts: []part{{"domain_name", "ac\x01me", false}, {"csv_file", twoNodes, true}}, creds: acme, status: 400, msg: "Invalid or bad request body: domain_name is not valid text"},
		{name: "long domain_name", parts: []part{{"domain_name", strings.Repeat("a", 257), false}, {"csv_file", twoNodes, true}}, creds: acme, status: 400, msg: "Invalid or bad request body: domain_name is longer than 256 bytes"},
		{name: "no csv_file", parts: []part{{"domain_name", "acme", false}}, creds: acme, status: 400, msg: "Invalid or bad request body: csv_file missing"},
		{name: "empty csv_file", parts: []part{{"domain_name", "acme", false}, {"csv_file", "", true}}, creds: acme, status: 400, msg: "Invalid or bad request body: csv_file is empty"},
		{name: "two csv_files", parts: append(good[:2:2], part{"csv_file", twoNodes, true}), creds: acme, status: 400, msg: "Invalid or bad request body: csv_file appears twice"},
		{name: "two domain_names", parts: append([]part{{"domain_name", "acme", false}}, good...), creds: acme, status: 400, msg: "Invalid or bad request body: domain_name appears twice"},
		{name: "unknown part", parts: append(good[:2:2], part{"extra", "x", false}), creds: acme, status: 400, msg: `Invalid or bad request body: unknown part "extra" (want domain_name and csv_file)`},
		{name: "truncated multipart", raw: "--B\r\nContent-Disposition: form-data; name=\"domain_name\"\r\n\r\nacme", ct: "multipart/form-data; boundary=B", creds: acme, status: 400, msg: "Invalid or bad request body: malformed multipart body"},
		{name: "oversized csv_file", parts: []part{{"domain_name", "acme", false}, {"csv_file", strings.Repeat("x", 1025), true}}, creds: acme, status: 413, msg: "Invalid or bad request body: csv_file is larger than 1024 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := "", []byte(tc.raw)
			if tc.parts != nil {
				ct, body = multipartBody(t, tc.parts)
			}
			if tc.ct != "" {
				ct = tc.ct
			}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+api.FAQCreatePath, bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			setCreds(req, tc.creds)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e api.ErrorBody
			decodeBody(t, resp, &e)
			if resp.StatusCode != tc.status || e.ErrorMessage != tc.msg {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, e.ErrorMessage, tc.status, tc.msg)
			}
		})
	}
	if l := openTasks(t, st); len(l) != 0 {
		t.Errorf("rejected uploads stored %d tasks", len(l))
	}
}

// lazyReader yields n bytes of 'a' without holding them.
type lazyReader struct{ n int64 }

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.n -= k
	return int(k), nil
}

// TestFAQImport200MBUpload: a 200 MB csv_file meets the default cap with a
// 413 after reading at most the cap, and stores nothing.
func TestFAQImport200MBUpload(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	imp := &api.FAQImport{Store: st}
	r := mux.NewRouter()
	imp.Routes(r)
	head := "--B\r\nContent-Disposition: form-data; name=\"domain_name\"\r\n\r\nacme\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"csv_file\"; filename=\"big.csv\"\r\n\r\nnode_name,user_says,bot_says\n"
	body := &countingReader{r: io.MultiReader(strings.NewReader(head), &lazyReader{n: 200 << 20}, strings.NewReader("\r\n--B--\r\n"))}
	req := httptest.NewRequest(http.MethodPost, api.FAQCreatePath, body)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
	setCreds(req, acme)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	var e api.ErrorBody
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != http.StatusRequestEntityTooLarge || e.ErrorMessage != "Invalid or bad request body: csv_file is larger than 16777216 bytes" {
		t.Fatalf("got %d %q", w.Code, e.ErrorMessage)
	}
	if body.n > 17<<20 {
		t.Errorf("read %d bytes of a 200 MB upload; the cap is 16 MiB", body.n)
	}
	if l := openTasks(t, st); len(l) != 0 {
		t.Errorf("stored %d tasks", len(l))
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestFAQImportStatusErrors: unknown and malformed task ids are 404, the
// seed's 401 and 403 for missing or wrong credentials.
func TestFAQImportStatusErrors(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	f := newFAQFixture(t, st, 0, false)
	id := f.submit(t, acme, "acme", twoNodes)
	cases := []struct {
		name   string
		id     string
		creds  faqCreds
		status int
		msg    string
	}{
		{"unknown task", "fe139ce5-f4c3-4383-bacb-64a546cb0b6c", acme, 404, "unknown task_id"},
		{"malformed task id", "no%20such%3Btask", acme, 404, "unknown task_id"},
		{"too long task id", strings.Repeat("a", 65), acme, 404, "unknown task_id"},
		{"no authorization", id, faqCreds{"", acme.clientID}, 401, "Unauthorized Access or invalid token"},
		{"no client-id", id, faqCreds{acme.token, ""}, 401, "Unauthorized Access or invalid token"},
		{"wrong token", id, faqCreds{"tok-wrong", acme.clientID}, 401, "Unauthorized Access or invalid token"},
		{"the other acme's credentials", id, acme2, 401, "Unauthorized Access or invalid token"},
		{"wrong client-id", id, faqCreds{acme.token, acme2.clientID}, 403, "Access Forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, raw := f.getStatus(t, tc.creds, tc.id)
			var e api.ErrorBody
			_ = json.Unmarshal(raw, &e)
			if code != tc.status || e.ErrorMessage != tc.msg {
				t.Errorf("got %d %s, want %d %q", code, raw, tc.status, tc.msg)
			}
		})
	}
	// The task is stored, with its CSV, before the answer: In Progress
	// while no worker runs.
	code, raw := f.getStatus(t, acme, id)
	if code != 200 || !strings.Contains(string(raw), `"status":"In Progress"`) {
		t.Fatalf("status = %d %s", code, raw)
	}
	input, err := st.GetTaskInput(context.Background(), id)
	if err != nil || string(input) != twoNodes {
		t.Fatalf("stored input = %q, %v", input, err)
	}
}

// TestFAQImportUpsert: the seed's upsert — nodes not in the new file
// become inactive, same-named nodes take the new user says and bot says,
// new nodes are created — and FAQVersion increases with each import; the
// credentials pick between two businesses of the same name.
func TestFAQImportUpsert(t *testing.T) {
	for _, be := range faqBackends {
		t.Run(be.name, func(t *testing.T) {
			st := be.open(t)
			seedFAQBusinesses(t, st)
			f := newFAQFixture(t, st, 0, true)
			ctx := context.Background()

			id := f.submit(t, acme, "acme", twoNodes)
			s := f.wait(t, acme, id, time.Minute)
			if !s.Success || s.Body.Status != api.FAQStatusSuccess || s.Body.Message != api.FAQSuccessMessage || s.Body.Done != 2 || s.Body.Total != 2 {
				t.Fatalf("first import: %+v", s)
			}
			if v := faqVersion(t, st, 1); v != 1 {
				t.Fatalf("FAQVersion = %d after the first import, want 1", v)
			}
			second := "node_name,user_says,bot_says\nrefund,refund please|money back,Refunds take 3 days.<m>Call us for more.\ndelivery,where is my parcel,Parcels arrive in 2 days.\n"
			id2 := f.submit(t, acme, "acme", second)
			if s := f.wait(t, acme, id2, time.Minute); s.Body.Status != api.FAQStatusSuccess {
				t.Fatalf("second import: %+v", s)
			}
			if v := faqVersion(t, st, 1); v != 2 {
				t.Fatalf("FAQVersion = %d after the second import, want 2", v)
			}
			nodes, err := st.ListFAQ(ctx, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, n := range nodes {
				got[n.Name] = fmt.Sprintf("%v %q %q", n.Active, n.UserSays, n.BotSays)
			}
			want := map[string]string{
				"delivery": `true ["where is my parcel"] ["Parcels arrive in 2 days."]`,
				"hours":    `false ["when are you open" "opening hours"] ["We open at 9."]`,
				"refund":   `true ["refund please" "money back"] ["Refunds take 3 days." "Call us for more."]`,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("nodes after upsert:\n got %v\nwant %v", got, want)
			}
			// The same domain name with the other business's credentials
			// imports into that business only.
			id3 := f.submit(t, acme2, "acme", twoNodes)
			if s := f.wait(t, acme2, id3, time.Minute); s.Body.Status != api.FAQStatusSuccess {
				t.Fatalf("acme 2 import: %+v", s)
			}
			if v1, v3 := faqVersion(t, st, 1), faqVersion(t, st, 3); v1 != 2 || v3 != 1 {
				t.Errorf("FAQVersion acme=%d acme2=%d, want 2 and 1", v1, v3)
			}
			if in, err := st.GetTaskInput(ctx, id); err != nil || in != nil {
				t.Errorf("a finished task keeps its input: %d bytes, %v", len(in), err)
			}
		})
	}
}

// TestFAQImportErrorStatus: a file with bad rows ends in Error naming the
// failing row, and the previous FAQ is untouched.
func TestFAQImportErrorStatus(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	f := newFAQFixture(t, st, 0, true)
	id := f.submit(t, acme, "acme", twoNodes)
	if s := f.wait(t, acme, id, time.Minute); s.Body.Status != api.FAQStatusSuccess {
		t.Fatalf("setup import: %+v", s)
	}
	cases := []struct {
		name, csv string
		errors    []string
	}{
		{"empty node_name", "node_name,user_says,bot_says\nok,hello,Hi.\n,what,Answer.\n", []string{"line 3: node_name is empty"}},
		{"two bad rows", "node_name,user_says,bot_says\na,,x\nb,y,\n", []string{"line 2: user_says is empty", "line 3: bot_says is empty"}},
		{"duplicate node", "node_name,user_says,bot_says\na,x,y\na,z,w\n", []string{`line 3: node_name "a" repeats line 2`}},
		{"not csv", "\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", []string{"line 1: text is not valid UTF-8"}},
		{"unknown header", "question_text,reply\nx,y\n", []string{`line 1: header: unknown column "question_text" (want node_name,user_says,bot_says)`}},
		{"header only", "node_name,user_says,bot_says\n", []string{"no nodes: the file has a header but no rows"}},
		{"bad quoting", "node_name,user_says,bot_says\na,\"x,y\n", []string{`line 2: csv syntax: extraneous or missing " in quoted-field`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := f.submit(t, acme, "acme", tc.csv)
			s := f.wait(t, acme, id, time.Minute)
			if s.Success || s.Body.Status != api.FAQStatusError || fmt.Sprint(s.Body.Errors) != fmt.Sprint(tc.errors) ||
				s.Body.Message != tc.errors[0] || s.Error != tc.errors[0] {
				t.Errorf("status = %+v, want Error %q", s, tc.errors)
			}
			if v := faqVersion(t, st, 1); v != 1 {
				t.Errorf("FAQVersion = %d: a failed import changed the FAQ", v)
			}
		})
	}
	nodes, err := st.ListFAQ(context.Background(), 1, true)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("active nodes after failed imports = %d, %v; want the first import's 2", len(nodes), err)
	}
}

// largeFAQ writes n varied FAQ rows: every node's phrases differ.
func largeFAQ(n int) string {
	topics := []string{"refund", "delivery", "password", "invoice", "warranty", "upgrade", "coupon", "account", "branch", "appointment", "balance", "sim card"}
	verbs := []string{"how do I", "can I", "where can I", "is it possible to", "what is the way to", "help me"}
	acts := []string{"check", "change", "cancel", "renew", "track", "get", "report", "pay"}
	var b strings.Builder
	b.Grow(n * 120)
	b.WriteString("node_name,Question(User Says),Answer(Bot Says)\n")
	for i := range n {
		tp, v, a := topics[i%len(topics)], verbs[(i/len(topics))%len(verbs)], acts[(i/7)%len(acts)]
		fmt.Fprintf(&b, "faq_%05d,\"%s %s my %s %d|%s for %s number %d\",\"To %s your %s (case %d), open the app.<m>Anything else?\"\n",
			i, v, a, tp, i, a, tp, i*7+3, a, tp, i)
	}
	return b.String()
}

// TestFAQImport50000Rows: a 50,000-row file completes through status
// polling, every node active, FAQVersion bumped once.
func TestFAQImport50000Rows(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	f := newFAQFixture(t, st, 0, true)
	csv := largeFAQ(50000)
	start := time.Now()
	id := f.submit(t, acme, "acme", csv)
	answered := time.Since(start)
	s := f.wait(t, acme, id, 3*time.Minute)
	if s.Body.Status != api.FAQStatusSuccess || s.Body.Done != 50000 || s.Body.Total != 50000 {
		t.Fatalf("status = %+v", s)
	}
	t.Logf("%d bytes: submit answered in %v, Success after %v", len(csv), answered, time.Since(start))
	nodes, err := st.ListFAQ(context.Background(), 1, true)
	if err != nil || len(nodes) != 50000 {
		t.Fatalf("active nodes = %d, %v", len(nodes), err)
	}
	if v := faqVersion(t, st, 1); v != 1 {
		t.Errorf("FAQVersion = %d, want 1", v)
	}
}

// TestFAQImportResumesAfterRestart: tasks a stopped process left pending
// (submitted, never started) or running (cut short mid-import) are run
// again from their stored CSV by the next process's worker; a task whose
// CSV is gone fails cleanly.
func TestFAQImportResumesAfterRestart(t *testing.T) {
	for _, be := range []struct {
		name string
		open func(t *testing.T) func() store.Store
	}{
		{"sqlite", func(t *testing.T) func() store.Store {
			path := filepath.Join(t.TempDir(), store.SQLiteFile)
			return func() store.Store {
				s, err := store.OpenSQLite(context.Background(), path, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
		{"postgres", func(t *testing.T) func() store.Store {
			u := storetest.PostgresURL(t)
			return func() store.Store {
				s, err := store.OpenPostgres(context.Background(), u, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			ctx := context.Background()

			// First process: accepts two uploads, its worker never runs.
			st1 := open()
			seedFAQBusinesses(t, st1)
			f1 := newFAQFixture(t, st1, 0, false)
			pending := f1.submit(t, acme, "acme", twoNodes)
			running := f1.submit(t, acme2, "acme", largeFAQ(3000))
			task, err := st1.GetTask(ctx, running)
			if err != nil {
				t.Fatal(err)
			}
			task.Status, task.Done, task.Total = ivr.TaskRunning, 1536, 3000 // as a crash mid-import leaves it
			if err := st1.UpdateTask(ctx, task); err != nil {
				t.Fatal(err)
			}
			lost := &ivr.Task{ID: "0c5e4f0e-0000-4000-8000-000000000001", BusinessID: 1, Kind: api.FAQImportKind, Status: ivr.TaskRunning}
			if err := st1.CreateTask(ctx, lost); err != nil {
				t.Fatal(err)
			}
			f1.srv.Close()
			if err := st1.Close(); err != nil {
				t.Fatal(err)
			}

			// Second process on the same database.
			st2 := open()
			t.Cleanup(func() { _ = st2.Close() })
			f2 := newFAQFixture(t, st2, 0, true)
			if s := f2.wait(t, acme, pending, time.Minute); s.Body.Status != api.FAQStatusSuccess || s.Body.Done != 2 {
				t.Errorf("pending task after restart: %+v", s)
			}
			if s := f2.wait(t, acme2, running, time.Minute); s.Body.Status != api.FAQStatusSuccess || s.Body.Done != 3000 {
				t.Errorf("running task after restart: %+v", s)
			}
			s := f2.wait(t, acme, lost.ID, time.Minute)
			if s.Body.Status != api.FAQStatusError || s.Body.Message != "the uploaded csv_file was not kept; submit it again" {
				t.Errorf("task without input: %+v", s)
			}
			if v1, v3 := faqVersion(t, st2, 1), faqVersion(t, st2, 3); v1 != 1 || v3 != 1 {
				t.Errorf("FAQVersion acme=%d acme2=%d, want 1 each", v1, v3)
			}
			for id, want := range map[int64]int{1: 2, 3: 3000} {
				nodes, err := st2.ListFAQ(ctx, id, true)
				if err != nil || len(nodes) != want {
					t.Errorf("business %d: %d active nodes, %v; want %d", id, len(nodes), err, want)
				}
			}
		})
	}
}

// FuzzFAQUpload feeds arbitrary multipart bodies to the create handler:
// it never panics or fails with a 5xx, and stores a task only for a 200.
func FuzzFAQUpload(f *testing.F) {
	_, good := multipartBody(f, []part{{"domain_name", "acme", false}, {"csv_file", twoNodes, true}})
	f.Add(good)
	f.Add([]byte("--B\r\n\r\n--B--"))
	f.Add([]byte(""))
	st := storetest.NewSQLite(f)
	ctx := context.Background()
	if err := st.CreateBusiness(ctx, &ivr.Business{ID: 1, Name: "acme", TokenHash: ivr.HashToken(acme.token), ClientID: acme.clientID, Active: true}); err != nil {
		f.Fatal(err)
	}
	imp := &api.FAQImport{Store: st, MaxBytes: 4096}
	r := mux.NewRouter()
	imp.Routes(r)
	boundary := strings.TrimPrefix(strings.SplitN(string(good), "\r\n", 2)[0], "--")
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, api.FAQCreatePath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		setCreds(req, acme)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if w.Code != http.StatusOK && !strings.Contains(w.Body.String(), "error_message") {
			t.Fatalf("%d without an error message: %s", w.Code, w.Body)
		}
	})
}

// cancellingStore stops the worker just as it applies an import: the
// ReplaceFAQ call runs with the worker's context already ended, as in a
// shutdown mid-import.
type cancellingStore struct {
	store.Store
	cancel func()
	calls  int
}

func (s *cancellingStore) ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error) {
	s.calls++
	s.cancel()
	<-ctx.Done()
	return s.Store.ReplaceFAQ(ctx, businessID, nodes)
}

// TestFAQImportShutdownMidImport: a worker stopped while applying an
// import leaves nothing applied and the task In Progress (not failed); the
// next worker completes it.
func TestFAQImportShutdownMidImport(t *testing.T) {
	st := storetest.NewSQLite(t)
	seedFAQBusinesses(t, st)
	f := newFAQFixture(t, st, 0, false)
	id := f.submit(t, acme, "acme", twoNodes)

	ctx, cancel := context.WithCancel(context.Background())
	cs := &cancellingStore{Store: st, cancel: cancel}
	stopped := &api.FAQImport{Store: cs}
	if err := stopped.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil at shutdown", err)
	}
	if cs.calls != 1 {
		t.Fatalf("ReplaceFAQ called %d times, want 1", cs.calls)
	}
	task, err := st.GetTask(context.Background(), id)
	if err != nil || task.Status != ivr.TaskRunning {
		t.Fatalf("task after shutdown = %+v, %v; want running", task, err)
	}
	if v := faqVersion(t, st, 1); v != 0 {
		t.Fatalf("FAQVersion = %d after an interrupted import, want 0", v)
	}
	if nodes, err := st.ListFAQ(context.Background(), 1, false); err != nil || len(nodes) != 0 {
		t.Fatalf("interrupted import stored %d nodes, %v", len(nodes), err)
	}
	code, raw := f.getStatus(t, acme, id)
	if code != 200 || !strings.Contains(string(raw), `"status":"In Progress"`) {
		t.Fatalf("status = %d %s", code, raw)
	}

	f.runWorker(t)
	if s := f.wait(t, acme, id, time.Minute); s.Body.Status != api.FAQStatusSuccess || s.Body.Done != 2 {
		t.Fatalf("after restart: %+v", s)
	}
	if v := faqVersion(t, st, 1); v != 1 {
		t.Errorf("FAQVersion = %d, want 1", v)
	}
}
