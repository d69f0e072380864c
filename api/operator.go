package api

import "github.com/labstack/echo/v4"

// operatorRoutes registers the operator API under /api/v1.
func (s *Server) operatorRoutes(g *echo.Group) {
	g.GET("/devices", s.listDevices)
	g.GET("/devices/:sn", s.getDevice)
	g.PATCH("/devices/:sn", s.moveDevice)
	g.DELETE("/devices/:sn", s.decommissionDevice)
	g.GET("/devices/:sn/reports", s.listReports)
	g.GET("/openapi.yaml", s.openAPI)
	g.POST("/devices/:sn/commands", s.createCommand)
	g.GET("/commands", s.listCommands)
	g.GET("/logs", s.listLogs)
	g.GET("/logs/:id", s.downloadLog)
	g.GET("/alerts", s.listAlerts)
}
