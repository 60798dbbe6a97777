package kube

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

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
// than go-yaml's, msg is kept with the line shifted past the earlier
// documents.
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
			if line, col, ok := yamlStop(text); ok && line >= at {
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
