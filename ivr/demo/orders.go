package demo

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr/bot/faq"
)

// The demo's fake order API.
//
// The demo business's order_status node asks for an order number and looks
// it up through an API step ([OrderStep]) in this small order API, which
// koel serves itself at [OrdersPath] while the demo business is enabled, so
// `make run` shows an API step working with nothing else running. It
// answers as a business's own REST API would (api-requirements.md): JSON,
// a bearer token, 404 for an unknown order, and two order numbers that
// play the error scenarios.

// OrdersPath is the route of the fake order API; {order_id} is the order
// number.
const OrdersPath = "/demo/orders/{order_id}"

// OrdersTokenEnv names the token the demo's API step sends as its bearer
// token (${KOEL_DEMO_ORDERS_TOKEN} in the step's header). koel generates it
// at start; it is never read from the real environment.
const OrdersTokenEnv = "KOEL_DEMO_ORDERS_TOKEN"

// Order numbers of the fake order API that play error scenarios.
const (
	// OrderOutage answers 500: the caller hears the break message.
	OrderOutage = "5000"
	// OrderSlow never answers within the step's timeout: the break message.
	OrderSlow = "7000"
)

// OrderSlowHold bounds how long the fake API holds a request for
// [OrderSlow] when the caller does not give up first.
const OrderSlowHold = 30 * time.Second

// Order is one order of the fake order API.
type Order struct {
	ID     string `json:"id"`
	Item   string `json:"item"`
	Status string `json:"status"`
}

// Orders are the fake order API's known orders.
var Orders = map[string]Order{
	"1042": {ID: "1042", Item: "a pair of wireless earphones", Status: "out for delivery and arrives today"},
	"2001": {ID: "2001", Item: "a smart television", Status: "delivered"},
	"3113": {ID: "3113", Item: "a laptop charger", Status: "being packed and ships tomorrow"},
}

// OrderAPI returns the fake order API's handler. Requests must carry
// "Authorization: Bearer {token}"; the order number is the last path
// segment. Answers: 200 {"order": {...}}, 401 without the token, 404 for an
// unknown order, 500 for [OrderOutage], and no answer for [OrderSlow]
// until the caller gives up.
func OrderAPI(token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}` + "\n"))
			return
		}
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch id {
		case OrderOutage:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"order database unavailable"}` + "\n"))
			return
		case OrderSlow:
			t := time.NewTimer(OrderSlowHold)
			defer t.Stop()
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		o, ok := Orders[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such order"}` + "\n"))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]Order{"order": o})
	})
}

// OrderNode is the demo FAQ node whose answer asks for an order number.
const OrderNode = "order_status"

// OrderStep returns the API step of the demo's order_status node, calling
// the fake order API under baseURL (koel's own address, "http://127.0.0.1:8080").
func OrderStep(baseURL string) faq.APIStep {
	return faq.APIStep{
		Method:    http.MethodGet,
		URL:       strings.TrimRight(baseURL, "/") + "/demo/orders/{{.value}}",
		Headers:   map[string]string{"Authorization": "Bearer ${" + OrdersTokenEnv + "}"},
		Reply:     "Your order {{.order.id}}, {{.order.item}}, is {{.order.status}}.",
		NotFound:  faq.DefaultNotFound,
		Timeout:   2 * time.Second,
		MaxDigits: 8,
	}
}
