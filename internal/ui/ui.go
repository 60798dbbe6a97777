// Package ui is how hull talks to people: aligned tables, --format Go
// templates and JSON, human sizes and durations, and pull/push progress
// (bars on a terminal, plain lines otherwise).
package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal with a size: progress bars
// need both (a pty nobody sized, as under script(1), gets plain lines).
func IsTerminal(f *os.File) bool {
	if !term.IsTerminal(int(f.Fd())) {
		return false
	}
	w, _, err := term.GetSize(int(f.Fd()))
	return err == nil && w > 0
}

// Table writes rows aligned in columns, docker-style (3 spaces apart).
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the given header (nil for none).
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	if len(header) > 0 {
		t.Row(header...)
	}
	return t
}

// Row adds one row.
func (t *Table) Row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }

// Format renders items with a --format value: "json" (one JSON object per
// line, as docker), "table TEMPLATE" (a header from the template's field
// names), or a Go template applied to each item.
func Format[T any](w io.Writer, format string, items []T) error {
	return FormatHeaders(w, format, items, nil)
}

// FormatHeaders is Format with a table's header names for fields whose
// docker header is not the field's name split and upper-cased (stats:
// {{.CPUPerc}} is "CPU %").
func FormatHeaders[T any](w io.Writer, format string, items []T, headers map[string]string) error {
	if format == "json" || format == "{{json .}}" {
		enc := json.NewEncoder(w)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	}
	table := false
	if rest, ok := strings.CutPrefix(format, "table "); ok {
		format, table = rest, true
	}
	tmpl, err := parseFormat(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		out = tw
		fmt.Fprintln(tw, headerOf(format, headers))
	}
	for _, it := range items {
		var sb strings.Builder
		if err := tmpl.Execute(&sb, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out, sb.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// Inspect renders inspect documents through a Go template the way docker
// does: on the Go value first and, where that fails, on the document's
// JSON shape, so docker's field names (.Id for a field called ID) work.
func Inspect(w io.Writer, format string, docs []any) error {
	tmpl, err := parseFormat(format)
	if err != nil {
		return err
	}
	for _, d := range docs {
		var sb strings.Builder
		if err := tmpl.Execute(&sb, d); err != nil {
			raw, jerr := jsonShape(d)
			if jerr != nil {
				return jerr
			}
			sb.Reset()
			if err := tmpl.Option("missingkey=error").Execute(&sb, raw); err != nil {
				return fmt.Errorf("--format: %w", err)
			}
		}
		fmt.Fprintln(w, sb.String())
	}
	return nil
}

// jsonShape is v as its JSON decodes (maps, slices, json.Number).
func jsonShape(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	err = dec.Decode(&raw)
	return raw, err
}

func parseFormat(format string) (*template.Template, error) {
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"join":  strings.Join,
		"truncate": func(s string, n int) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
	}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("--format %q: %w", format, err)
	}
	return tmpl, nil
}

// headerOf turns "{{.ID}}\t{{.Repository}}" into "ID\tREPOSITORY",
// taking the names in headers where given.
func headerOf(format string, headers map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			b.WriteString(format)
			break
		}
		b.WriteString(format[:i])
		j := strings.Index(format[i:], "}}")
		if j < 0 {
			break
		}
		field := strings.TrimSpace(format[i+2 : i+j])
		field = strings.TrimPrefix(field, ".")
		if k := strings.LastIndexByte(field, '.'); k >= 0 {
			field = field[k+1:]
		}
		if h, ok := headers[field]; ok {
			b.WriteString(h)
		} else {
			b.WriteString(strings.ToUpper(splitCamel(field)))
		}
		format = format[i+j+2:]
	}
	return b.String()
}

func splitCamel(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Size formats bytes the way docker does (decimal units, 3 significant digits).
func Size(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%dB", n)
	case f >= 100:
		return fmt.Sprintf("%.0f%s", f, units[i])
	case f >= 10:
		return fmt.Sprintf("%.1f%s", f, units[i])
	}
	return fmt.Sprintf("%.2f%s", f, units[i])
}

// Ago formats a past time as docker's "3 weeks ago".
func Ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return Duration(time.Since(t)) + " ago"
}

// Duration formats d as docker's human duration ("About a minute", "2 hours").
func Duration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// Warn prints a one-line warning to w.
func Warn(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "WARNING: "+format+"\n", args...)
}
