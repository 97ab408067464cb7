package main

import (
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr/api"
)

// pprofRoutes serves Go's runtime profiles under the admin API
// (/admin/v1/debug/pprof/…), so an operator can take a CPU profile or a
// heap snapshot of a loaded node with `go tool pprof -http :0 -H
// "Authorization: Bearer $KOEL_ADMIN_TOKEN" URL`. r must already require
// the admin token: profiles expose code paths and memory contents. The
// handlers are net/http/pprof's, mounted on r explicitly; the package's
// registration on http.DefaultServeMux is never served by koel.
func pprofRoutes(r *mux.Router) {
	d := r.PathPrefix("/debug/pprof").Subrouter()
	d.HandleFunc("/", pprof.Index).Methods(http.MethodGet)
	d.HandleFunc("/cmdline", pprof.Cmdline).Methods(http.MethodGet)
	d.HandleFunc("/profile", pprof.Profile).Methods(http.MethodGet)
	d.HandleFunc("/symbol", pprof.Symbol).Methods(http.MethodGet, http.MethodPost)
	d.HandleFunc("/trace", pprof.Trace).Methods(http.MethodGet)
	d.HandleFunc("/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := mux.Vars(req)["name"]
		if runtimepprof.Lookup(name) == nil { // heap, goroutine, allocs, block, mutex, threadcreate
			api.WriteError(w, api.Errorf(http.StatusNotFound, "no such profile"))
			return
		}
		pprof.Handler(name).ServeHTTP(w, req)
	}).Methods(http.MethodGet)
}
