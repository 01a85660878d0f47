package server

import (
	_ "embed"
	"net/http"

	"github.com/switchboard-inbox/switchboard"
)

// openAPIDoc is the agent API's contract (docs/design.md §4.1) as OpenAPI
// 3.1: embedded, so that the binary serves the description of the very
// routes it registers, and openapi_test.go checks real answers against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves openapi.json; like the rest of /api/v1 it needs an
// authenticated caller.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, me switchboard.Actor) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
