package kube

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// yamlSyntaxError words a YAML syntax error in a document that starts at
// line first of its file: go-yaml's message, as kubectl prints it, but at
// the line and column where the document goes wrong, with that line and
// a caret under the column. go-yaml (under sigs.k8s.io/yaml, which
// decodes the document) reports a line only, and often the line of the
// block that holds the mistake rather than its own; goccy/go-yaml's
// parser, run on the same text only when it failed, places the token it
// stopped at. Its message is not used: kubectl's users know go-yaml's.
// Where goccy finds nothing wrong, no token, or one on an earlier line
// than go-yaml's, go-yaml's line is shown, at the column its error stands
// for there (yamlColumn). Other errors keep go-yaml's words, the line
// shifted past the earlier documents.
func yamlSyntaxError(text []byte, first int, msg string) string {
	// "yaml: line 3: mapping values are not allowed in this context";
	// other errors ("yaml: unmarshal errors:\n  line 9: key \"image\"
	// already set in map") keep their words, the line shifted.
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, detail, ok := strings.Cut(rest, ": "); ok {
			// go-yaml's line is where it found the error, at or after
			// the mistake; goccy's token is the mistake's, unless it
			// stopped before that line (a plain scalar continued on
			// the next line, where go-yaml is right).
			at, _ := strconv.Atoi(n)
			line, col, ok := yamlStop(text)
			if !ok || line < at {
				// go-yaml's line, then, and the column its error
				// stands for on it (yamlColumn).
				line, col, ok = at, yamlColumn(text, at, detail), true
			}
			if col > 0 {
				return fmt.Sprintf("yaml: line %d, column %d: %s%s", line+first-1, col, detail, yamlCaret(text, first, line, col))
			}
		}
	}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[2]] + strconv.Itoa(n+first-1) + msg[m[3]:]
	}
	return msg
}

// yamlLine finds the line of a YAML error ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlStop is where goccy/go-yaml's parser stops in text: the position,
// 1-based, within text; ok is false if it parses text or names no place.
func yamlStop(text []byte) (line, column int, ok bool) {
	_, err := parser.ParseBytes(text, 0)
	var ye interface{ GetToken() *token.Token } // goccy's errors
	if err == nil || !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		return 0, 0, false
	}
	pos := ye.GetToken().Position
	if pos.Line < 1 || pos.Column < 1 || pos.Line > strings.Count(string(text), "\n")+1 {
		return 0, 0, false
	}
	return pos.Line, pos.Column, true
}

// yamlColumn is the column, 1-based, that go-yaml's error detail stands
// for on line of text, when go-yaml names the line and goccy does not
// place it (a plain scalar continued on the next line, which goccy
// accepts): for "mapping values are not allowed", the line's first
// colon that ends a key (the value indicator go-yaml stopped at); for
// anything else, the line's first character that is not a blank. 0: the
// line is not in text, or blank.
func yamlColumn(text []byte, line int, detail string) int {
	lines := strings.Split(string(text), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	src := strings.TrimRight(lines[line-1], "\r")
	start := strings.IndexFunc(src, func(r rune) bool { return r != ' ' && r != '\t' })
	if start < 0 {
		return 0
	}
	if strings.HasPrefix(detail, "mapping values are not allowed") {
		for i := start; i < len(src); i++ {
			if src[i] == ':' && (i+1 == len(src) || src[i+1] == ' ' || src[i+1] == '\t') {
				return utf8.RuneCountInString(src[:i]) + 1
			}
		}
	}
	return utf8.RuneCountInString(src[:start]) + 1
}

// yamlCaret is line of text and a caret under its column, each prefixed
// with the line's number in the file whose line first text starts at.
func yamlCaret(text []byte, first, line, col int) string {
	src := strings.TrimRight(strings.Split(string(text), "\n")[line-1], "\r")
	num := strconv.Itoa(line + first - 1)
	var caret strings.Builder
	n := 0
	for _, r := range src { // under the column's character, tabs kept
		if n++; n >= col {
			break
		}
		if r == '\t' {
			caret.WriteByte('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	return fmt.Sprintf("\n  %s | %s\n  %s | %s^", num, src, strings.Repeat(" ", len(num)), caret.String())
}
