package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
)

// view is what every template is given: the page's title and menu entry,
// who is logged in, the forms' CSRF token, the message of the action that
// led here, and the page's own data.
type view struct {
	Title string
	Nav   string
	Me    *wire.Me
	Staff bool // an admin or a reader: the admin pages' menu
	Admin bool // an admin: their forms
	CSRF  string
	Flash string
	Data  any
	Now   time.Time
}

// views are the parsed templates, a set per page, and the static files.
type views struct {
	pages  map[string]*template.Template
	static map[string]staticFile
}

type staticFile struct {
	body        []byte
	contentType string
	version     string // a hash of body, in the file's URL
}

// parseViews parses every page template with the layout and the
// partials, and reads the static files.
func parseViews() (*views, error) {
	v := &views{pages: map[string]*template.Template{}, static: map[string]staticFile{}}
	statics, err := fs.Glob(files, "static/*")
	if err != nil {
		return nil, err
	}
	for _, name := range statics {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		v.static[path.Base(name)] = staticFile{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			f, ok := v.static[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return Prefix + "/static/" + name + "?v=" + f.version, nil
		},
		"amount": amount,
		"exact":  grouped,
		"when":   func(t wire.Time) string { return when(t.Time) },
		"ago":    func(now time.Time, t wire.Time) string { return ago(now, t.Time) },
		"iso": func(t wire.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"past": func(now time.Time, t wire.Time) bool { return !t.IsZero() && !t.After(now) },
		"add":  func(a, b int) int { return a + b },
		"field": func(errs fieldErrors, name string) string {
			return errs[name]
		},
		"source":  sourceName,
		"outcome": outcome,
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
	pages, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", p)
		if err != nil {
			return nil, err
		}
		v.pages[name] = t
	}
	return v, nil
}

// execute writes the page name with data v.
func (v *views) execute(w io.Writer, name string, data view) error {
	t, ok := v.pages[name]
	if !ok {
		return fmt.Errorf("no template %q", name)
	}
	return t.ExecuteTemplate(w, "layout", data)
}

// static answers a static file: cached for good when asked by the URL the
// pages use (which changes with the file), else revalidated.
func (c *Console) static(rq *request) error {
	f, ok := c.views.static[rq.r.PathValue("file")]
	if !ok {
		c.NotFound(rq.w, rq.r)
		return nil
	}
	h := rq.w.Header()
	h.Set("Content-Type", f.contentType)
	if rq.r.URL.Query().Get("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", `"`+f.version+`"`)
	rq.answered = true
	if match := rq.r.Header.Get("If-None-Match"); match == `"`+f.version+`"` {
		rq.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	_, _ = rq.w.Write(f.body)
	return nil
}

// sourceName is a holding's source as the pages show it.
func sourceName(src *string) string {
	if src == nil {
		return "(none: the holder's own)"
	}
	if *src == "" {
		return `"" (empty)`
	}
	return *src
}
