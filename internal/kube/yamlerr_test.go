package kube

import (
	"strings"
	"testing"
)

// A YAML syntax error names the file's line and column where the document
// goes wrong, with go-yaml's words (kubectl's), and shows the line with a
// caret under the column; a later document's lines count from the file's
// start.
func TestYAMLSyntaxErrorsNameLineAndColumn(t *testing.T) {
	head := "apiVersion: v1\nkind: Pod\nmetadata:\n"
	for _, tc := range []struct {
		name, doc string
		first     int
		want      string
	}{
		{"a colon in a value", head + "  name: x: y\n", 1,
			"yaml: line 4, column 9: mapping values are not allowed in this context\n  4 |   name: x: y\n    |         ^"},
		{"a tab", head + "\tname: x\n", 1,
			"yaml: line 4, column 1: found character that cannot start any token\n  4 | \tname: x\n    | ^"},
		{"an unclosed flow mapping", head + "  labels: {a: b\n", 1,
			"line 4, column 11: did not find expected ',' or '}'\n  4 |   labels: {a: b\n    |           ^"},
		// go-yaml names line 8, the sequence entry; the mistake is on 9.
		{"a key out of its block", head + "  name: x\nspec:\n  containers:\n    - name: a\n      image: busybox\n     command: [sh]\n", 1,
			"line 9, column 6: "},
		// goccy stops at "x", a plain scalar it continues on line 5;
		// go-yaml's line 5 is the mistake's, its column the colon.
		{"an over-indented key", head + "  name: x\n   bad: indent\n", 1,
			"yaml: line 5, column 7: mapping values are not allowed in this context\n  5 |    bad: indent\n    |       ^"},
		{"the second document", head + "  name: x: y\n", 11,
			"yaml: line 14, column 9: mapping values are not allowed in this context\n  14 |   name: x: y\n     |         ^"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeDocument("pod.yaml", tc.first, []byte(tc.doc), "")
			if err == nil {
				t.Fatal("decoded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "error parsing pod.yaml (the document at line ") {
				t.Errorf("error:\n%s\nwant it to hold:\n%s", err, tc.want)
			}
		})
	}
	// Not a syntax error: go-yaml's message, its line counted in the file.
	_, err := decodeDocument("pod.yaml", 11, []byte(head+"  name: x\n  name: y\n"), "")
	if err == nil || !strings.Contains(err.Error(), "line 15: key \"name\" already set in map") {
		t.Errorf("duplicate key: %v; want go-yaml's message at the file's line 15", err)
	}
}
