package kookoo_test

import (
	"fmt"
	"net/url"
	"time"

	"github.com/koelvoice/koel/kookoo"
)

func ExampleResponse_Render() {
	resp := kookoo.Response{SID: "12345", Verbs: []kookoo.Verb{
		kookoo.PlayText{Text: "Welcome to koel. How can I help?"},
		kookoo.Record{Name: "12345-1", Format: "wav", Silence: 3 * time.Second, MaxDuration: 10 * time.Second},
	}}
	if err := resp.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.String())
	// Output:
	// <response sid="12345"><playtext>Welcome to koel. How can I help?</playtext><record format="wav" silence="3" maxduration="10">12345-1</record></response>
}

func ExampleParseValues() {
	v, _ := url.ParseQuery("event=GotDTMF&sid=12345&data=42%23&state=menu")
	req, err := kookoo.ParseValues(v)
	fmt.Println(req.Event, req.SID, req.Digits(), req.Extra.Get("state"), err)
	// Output:
	// GotDTMF 12345 42 menu <nil>
}

func ExampleParseResponse() {
	resp, err := kookoo.ParseResponse([]byte(`<?xml version="1.0"?><Response><CollectDtmf l="1" o="4000"><PlayText>Press 1</PlayText></CollectDtmf></Response>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	c := resp.Verbs[0].(kookoo.CollectDTMF)
	fmt.Println(c.MaxDigits, c.Timeout, c.Prompts[0].(kookoo.PlayText).Text)
	// Output:
	// 1 4s Press 1
}

func ExampleMaskNumber() {
	fmt.Println(kookoo.MaskNumber("+919704665032"))
	// Output:
	// ********5032
}
