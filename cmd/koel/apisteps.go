package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/outbox"
)

// withAPISteps wraps the engine's bot with the API steps the declared
// businesses give their FAQ nodes, and the demo business's order step when
// orders is set; with neither it returns b unchanged. The declared steps'
// client passes the outbox's dial-time address checks (loopback only with
// --dev, private networks with outbox.allow_private_destinations); the
// demo's client may reach exactly koel's own listener, nothing else.
func withAPISteps(b bot.Bot, st faq.StepMessages, cfg Config, getenv func(string) string, orders *demoOrders, log *slog.Logger) bot.Bot {
	steps := map[int64]map[string]faq.APIStep{}
	for _, biz := range cfg.Businesses {
		if len(biz.APISteps) > 0 {
			steps[biz.ID] = biz.APISteps
		}
	}
	lookup := func(id int64) map[string]faq.APIStep { return steps[id] }
	// The store holds the declared steps (provisioning writes them) and
	// the admin API's: read it when it can be read.
	if ls, ok := st.(apiStepLister); ok {
		lookup = newStoredSteps(ls, storedStepsTTL, log).get
	} else if len(steps) == 0 && orders == nil {
		return b
	}
	client := faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: cfg.Dev, AllowPrivate: cfg.Outbox.AllowPrivateDestinations}.Dialer())
	a := &faq.APISteps{Inner: b, Messages: st, Caller: &faq.APICaller{Client: client, Getenv: getenv, Logger: log},
		Steps: lookup}
	if orders != nil {
		_, declared := steps[demo.BusinessID]
		orders.log = log
		a.Steps = func(id int64) map[string]faq.APIStep {
			if id == demo.BusinessID && !declared {
				return orders.steps()
			}
			return lookup(id)
		}
		a.CallerFor = func(id int64) *faq.APICaller {
			if id == demo.BusinessID && !declared {
				return orders.caller.Load()
			}
			return nil
		}
	}
	return a
}

// demoOrders is the demo business's fake order API (ivr/demo.OrderAPI),
// served by koel itself at demo.OrdersPath while the demo is enabled, and
// the demo's order_status API step that calls it. The step exists once
// koel listens (its URL is koel's own address); its client is allowed
// that one loopback address, which is the only reason it passes the SSRF
// policy.
type demoOrders struct {
	token  string
	log    *slog.Logger
	caller atomic.Pointer[faq.APICaller]
	step   atomic.Pointer[faq.APIStep]
}

func newDemoOrders() (*demoOrders, error) {
	token, err := demo.NewToken()
	if err != nil {
		return nil, fmt.Errorf("demo order api token: %w", err)
	}
	return &demoOrders{token: token}, nil
}

// handler serves the fake order API.
func (d *demoOrders) handler() http.Handler { return demo.OrderAPI(d.token) }

// steps returns the demo business's API steps (none before koel listens).
func (d *demoOrders) steps() map[string]faq.APIStep {
	st := d.step.Load()
	if st == nil {
		return nil
	}
	return map[string]faq.APIStep{demo.OrderNode: *st}
}

// listening gives the step koel's own address: a wildcard listener is
// called on loopback.
func (d *demoOrders) listening(addr net.Addr) error {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return fmt.Errorf("demo order api: listener address %q: %w", addr, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	self := netip.AddrPortFrom(ip, ap.Port())
	log := d.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token := d.token
	d.caller.Store(&faq.APICaller{
		Client: faq.NewAPIClient(outbox.DialPolicy{AllowAddrs: []netip.AddrPort{self}}.Dialer()),
		Getenv: func(name string) string {
			if name == demo.OrdersTokenEnv {
				return token
			}
			return ""
		},
		Logger: log,
	})
	step := demo.OrderStep("http://" + self.String())
	d.step.Store(&step)
	return nil
}
