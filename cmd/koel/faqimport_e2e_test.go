package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr/api"
)

// TestFAQImportAPIEndToEnd: on a real koel, the demo business's FAQ is
// replaced through the FAQ import API; polling reaches Success and the bot
// answers from the new FAQ at once (its FAQVersion moved, so the matcher
// was rebuilt).
func TestFAQImportAPIEndToEnd(t *testing.T) {
	_, hook := newReceiver(t, 0)
	srv := startServer(t, testConfig(t, t.TempDir(), "", hook.URL))
	base := srv.URL()

	converse := func(text string) string {
		t.Helper()
		code, body := postJSON(t, base+"/api/bots/1/converse", map[string]string{"Authorization": "Bearer " + testToken},
			`{"user_id":"faq-e2e","text":"`+text+`"}`)
		if code != 200 {
			t.Fatalf("converse: %d %s", code, body)
		}
		return string(body)
	}
	if got := converse("is there free parking at your store"); strings.Contains(got, "Park in the basement") {
		t.Fatalf("the demo FAQ already knows the new answer: %s", got)
	}

	csv := "node_name,user_says,bot_says\n" +
		"parking,is there parking at your store|where do I park|free parking,Park in the basement of the store for free.\n" +
		"opening_hours,when are you open|opening hours,We are open from nine to nine.\n"
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("domain_name", "Bluebird Electronics (demo)")
	fw, _ := mw.CreateFormFile("csv_file", "faq.csv")
	_, _ = io.WriteString(fw, csv)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, base+api.FAQCreatePath, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range webhookHeaders {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created api.FAQCreateResponse
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !created.Success || created.Body.TaskID == "" {
		t.Fatalf("create: %d %+v %v", resp.StatusCode, created, err)
	}

	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var status api.FAQStatusResponse
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/mogambo_api/nodes/faq/create/status/"+created.Body.TaskID+"/", nil)
		for k, v := range webhookHeaders {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		status = api.FAQStatusResponse{}
		err = json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status: %d %v", resp.StatusCode, err)
		}
		if status.Body.Status != api.FAQStatusInProgress {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still In Progress after a minute: %+v", status)
		}
		<-tick.C
	}
	if status.Body.Status != api.FAQStatusSuccess || status.Body.Message != api.FAQSuccessMessage {
		t.Fatalf("status = %+v", status)
	}
	if got := converse("is there free parking at your store"); !strings.Contains(got, "Park in the basement of the store for free.") {
		t.Errorf("after the import the bot answers %s", got)
	}
	if got := converse("when are you open"); !strings.Contains(got, "We are open from nine to nine.") {
		t.Errorf("after the import the updated node answers %s", got)
	}
}
