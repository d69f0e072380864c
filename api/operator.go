package api

import "github.com/labstack/echo/v4"

// operatorRoutes registers the operator API under /api/v1.
func (s *Server) operatorRoutes(g *echo.Group) {
	g.GET("/devices", s.listDevices)
	g.GET("/devices/:sn", s.getDevice)
	g.GET("/devices/:sn/reports", s.listReports)
	g.GET("/openapi.yaml", s.openAPI)
}
