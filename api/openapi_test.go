package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// spec is the part of the OpenAPI document the tests check.
type spec struct {
	OpenAPI    string                                  `yaml:"openapi"`
	Paths      map[string]map[string]operation         `yaml:"paths"`
	Components struct{ Schemas map[string]schemaNode } `yaml:"components"`
}

type operation struct {
	Parameters []parameter    `yaml:"parameters"`
	Responses  map[string]any `yaml:"responses"`
}

type parameter struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

type schemaNode struct {
	Properties map[string]any `yaml:"properties"`
}

func loadSpec(t *testing.T) *spec {
	t.Helper()
	var s spec
	if err := yaml.Unmarshal(openAPISpec, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(s.OpenAPI, "3.") || len(s.Paths) == 0 {
		t.Fatalf("openapi.yaml is not an OpenAPI 3 document with paths")
	}
	return &s
}

// TestOpenAPIValidates loads the document with kin-openapi and validates it against the
// OpenAPI 3 specification, with the examples, defaults, patterns and formats checked too.
// The document's own integer formats uint32 and uint64 are defined as their ranges (uint64
// up to the largest int64, which is all the validator can hold).
func TestOpenAPIValidates(t *testing.T) {
	openapi3.DefineIntegerFormatValidator("uint32", openapi3.NewRangeFormatValidator[int64](0, math.MaxUint32))
	openapi3.DefineIntegerFormatValidator("uint64", openapi3.NewRangeFormatValidator[int64](0, math.MaxInt64))
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	err = doc.Validate(context.Background(), openapi3.EnableMultiError(), openapi3.EnableExamplesValidation(),
		openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation(), openapi3.EnableSchemaFormatValidation())
	if err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document:\n%v", err)
	}
}

var echoParam = regexp.MustCompile(`:(\w+)`)

// specRoute turns an echo route into the OpenAPI path and method that must describe it.
// Asynqmon is mounted for every method below /monitoring/; the spec describes its entry
// page (GET) and leaves asynqmon's own API to asynqmon.
func specRoute(method, path string) (string, string, bool) {
	if method == echo.RouteNotFound {
		return "", "", false
	}
	if strings.HasPrefix(path, "/monitoring") && method != http.MethodGet {
		return "", "", false
	}
	path = strings.TrimSuffix(path, "*")
	return echoParam.ReplaceAllString(path, "{$1}"), strings.ToLower(method), true
}

// TestOpenAPIMatchesRoutes walks the registered routes and the spec's paths both ways:
// every route is documented and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t)
	registered := map[string]bool{}
	for _, r := range h.srv.echo.Routes() {
		if p, m, ok := specRoute(r.Method, r.Path); ok {
			registered[m+" "+p] = true
		}
	}
	documented := map[string]bool{}
	for p, ops := range s.Paths {
		for m := range ops {
			if m == "parameters" || m == "summary" || m == "description" {
				continue
			}
			documented[m+" "+p] = true
		}
	}
	var undocumented, unserved []string
	for r := range registered {
		if !documented[r] {
			undocumented = append(undocumented, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			unserved = append(unserved, d)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unserved)
	if len(undocumented) > 0 {
		t.Errorf("routes missing from openapi.yaml: %v", undocumented)
	}
	if len(unserved) > 0 {
		t.Errorf("openapi.yaml documents operations no route serves: %v", unserved)
	}
}

// TestOpenAPIIsConsistent checks what a reader relies on: path parameters declared,
// every $ref resolves, every operation names its responses and errors use Error.
func TestOpenAPIIsConsistent(t *testing.T) {
	s := loadSpec(t)
	var doc map[string]any
	if err := yaml.Unmarshal(openAPISpec, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					ref := x.(string)
					node := any(doc)
					for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
						m, ok := node.(map[string]any)
						if !ok || m[part] == nil {
							t.Errorf("$ref %s does not resolve", ref)
							return
						}
						node = m[part]
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	for p, ops := range s.Paths {
		for m, op := range ops {
			if len(op.Responses) == 0 {
				t.Errorf("%s %s: no responses", m, p)
			}
			for _, want := range echoParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(p), -1) {
				found := slices.ContainsFunc(op.Parameters, func(q parameter) bool {
					return (q.Name == want[1] && q.In == "path") || q.Ref == "#/components/parameters/"+want[1]
				})
				if !found {
					t.Errorf("%s %s: path parameter %s not declared", m, p, want[1])
				}
			}
			if strings.HasPrefix(p, "/api/v1/") && op.Responses["401"] == nil {
				t.Errorf("%s %s: the 401 of operator auth is not documented", m, p)
			}
		}
	}
}

// TestOpenAPISchemasMatchResponses compares the documented fields with real responses.
func TestOpenAPISchemasMatchResponses(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t)
	h.seedDevices(device("A1", 1, "0371", "B503", time.Now()))
	h.seedReports("A1", 2, time.Now())

	check := func(schema string, raw []byte) {
		t.Helper()
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %s: %v", schema, raw, err)
		}
		var got, want []string
		for k := range obj {
			got = append(got, k)
		}
		for k := range s.Components.Schemas[schema].Properties {
			if _, ok := obj[k]; ok || !strings.HasSuffix(k, "Cursor") {
				want = append(want, k)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("schema %s has %v, the response %v", schema, want, got)
		}
	}
	var dev struct{ Items []json.RawMessage }
	h.getJSON("/api/v1/devices", &dev)
	check("DeviceList", h.get("/api/v1/devices").Body.Bytes())
	check("Device", dev.Items[0])
	var d map[string]json.RawMessage
	h.getJSON("/api/v1/devices/A1", &d)
	check("StatusReport", d["report"])
	var hist struct{ Items []json.RawMessage }
	h.getJSON("/api/v1/devices/A1/reports?limit=1", &hist)
	check("ReportList", h.get("/api/v1/devices/A1/reports?limit=1").Body.Bytes())
	check("HistoryItem", hist.Items[0])
	check("Error", h.get("/api/v1/devices/NOPE").Body.Bytes())
	check("StatusReply", h.postReport(fixture).Body.Bytes())

	rec := h.get("/api/v1/openapi.yaml")
	if rec.Code != http.StatusOK || rec.Body.String() != string(openAPISpec) || !strings.Contains(rec.Header().Get("Content-Type"), "yaml") {
		t.Fatalf("GET /api/v1/openapi.yaml = %d %s", rec.Code, rec.Header())
	}
}
