package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument is koel's OpenAPI 3 description of every route it serves
// (ivr/api/openapi.yaml). cmd/koel's tests check it against the real router
// and validate real responses against its schemas.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIPath is where the document is served.
const OpenAPIPath = "/openapi.yaml"

// OpenAPIContentType is the media type of the served document (RFC 9512).
const OpenAPIContentType = "application/yaml"

// OpenAPIDocument returns a copy of the embedded OpenAPI document.
func OpenAPIDocument() []byte { return append([]byte(nil), openAPIDocument...) }

// OpenAPIHandler serves the embedded OpenAPI document.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", OpenAPIContentType)
		h.Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(openAPIDocument)
	})
}
