package main

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument is openapi.yaml, the OpenAPI 3.1 description of the API,
// built into the binary.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// openAPI is GET /openapi.yaml: the embedded OpenAPI document, as is.
func (a *app) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument)
}
