package api

import "github.com/labstack/echo/v4"

// operatorRoutes registers the operator API under /api/v1.
func (s *Server) operatorRoutes(g *echo.Group) {
}
