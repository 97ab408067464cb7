package main

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/gupshup"
	"github.com/koelvoice/koel/channels/infobip"
	"github.com/koelvoice/koel/channels/jio"
	"github.com/koelvoice/koel/channels/karix"
	"github.com/koelvoice/koel/channels/messenger"
	"github.com/koelvoice/koel/channels/metawa"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/twilio"
	"github.com/koelvoice/koel/channels/webchat"
	"github.com/koelvoice/koel/ivr/api"
)

// addTextChannels serves the text platforms' webhooks (Messenger, Twilio
// WhatsApp, the WhatsApp Cloud API, Infobip, Gupshup, Karix, Jio and the
// other-channels API) and registers their send-API senders with the
// outbox. Send requests dial only public addresses, loopback too in
// development (the tests' fake platforms).
func (s *Server) addTextChannels() error {
	metrics := s.channelMetrics
	p := &platform.Pipeline{
		Connections: s.store,
		Engine:      s.engine,
		Notifier:    s.outbox,
		Metrics:     metrics,
		Logger:      s.log.With("component", "channels"),
		MaxAttempts: s.cfg.Outbox.MaxAttempts,
	}
	send := &platform.Sender{Client: platform.NewClient(platform.ClientOptions{AllowLoopback: s.cfg.Dev}), Metrics: metrics}
	// The seed's KooKoo setup has users enter <domain>/fb/<identifier> as
	// the application URL; KooKoo's requests there (sid and event, no
	// hub.mode) go to the KooKoo app. Registered first: mux takes the
	// first matching route.
	s.router.Handle("/fb/{identifier}", http.HandlerFunc(s.kookooAtFB)).MatcherFunc(isKooKooRequest)
	(&messenger.Adapter{Pipeline: p}).Routes(s.router)
	(&twilio.Adapter{Pipeline: p}).Routes(s.router)
	(&metawa.Adapter{Pipeline: p}).Routes(s.router)
	(&infobip.Adapter{Pipeline: p}).Routes(s.router)
	(&gupshup.Adapter{Pipeline: p}).Routes(s.router)
	(&karix.Adapter{Pipeline: p}).Routes(s.router)
	(&jio.Adapter{Pipeline: p}).Routes(s.router)
	(&webchat.API{Pipeline: p, Store: s.store}).Routes(s.router)
	s.outbox.Register(messenger.Channel, messenger.NewSender(send))
	s.outbox.Register(twilio.Channel, twilio.NewSender(send))
	s.outbox.Register(metawa.Channel, metawa.NewSender(send))
	s.outbox.Register(infobip.Channel, infobip.NewSender(send))
	s.outbox.Register(gupshup.Channel, gupshup.NewSender(send))
	s.outbox.Register(karix.Channel, karix.NewSender(send))
	s.outbox.Register(jio.Channel, jio.NewSender(send))
	s.outbox.Register(webchat.Channel, webchat.NewEventSender(send))
	return nil
}

// isKooKooRequest tells KooKoo's events from Meta's requests on /fb/.
func isKooKooRequest(r *http.Request, _ *mux.RouteMatch) bool {
	q := r.URL.Query()
	return q.Get("sid") != "" && q.Get("event") != "" && !q.Has("hub.mode")
}

func (s *Server) kookooAtFB(w http.ResponseWriter, r *http.Request) {
	if s.voice == nil || s.voice.app == nil {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "no such endpoint"))
		return
	}
	s.voice.app.ServeHTTP(w, r)
}
