package kookoo

import (
	"net/http/httptest"
	"testing"
	"time"
)

// turnResponse is koel's typical answer to a Record event.
var turnResponse = Response{SID: "21275806501458167", Verbs: []Verb{
	PlayText{Text: "Our branches are open from nine to five, Monday to Saturday. Anything else?"},
	Record{Name: "21275806501458167-3", Format: "wav", Silence: 3 * time.Second, MaxDuration: 10 * time.Second},
}}

func BenchmarkRender(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = turnResponse.Render()
	}
}

func BenchmarkParseResponse(b *testing.B) {
	data := turnResponse.Render()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	const target = "/kookoo/demo?event=Record&sid=21275806501458167&cid=919704665032&called_number=918065740671" +
		"&data=http%3A%2F%2Frecordings.kookoo.in%2Fkoel%2F21275806501458167-3.wav&status=silence&record_duration=4"
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", target, nil)
		if _, err := ParseRequest(r); err != nil {
			b.Fatal(err)
		}
	}
}
