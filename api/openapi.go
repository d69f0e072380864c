package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPISpec describes the terminal and operator API; TestOpenAPIMatchesRoutes keeps it
// and the registered routes in step.
//
//go:embed web/openapi.yaml
var openAPISpec []byte

// openAPI serves GET /api/v1/openapi.yaml.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPISpec)
}
