// Package report prints the tables of the bench programs.
package report

import (
	"fmt"
	"strings"
)

// PrintTable prints rows as left-aligned columns, two spaces apart; the
// first row is the header.
func PrintTable(rows [][]string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			fmt.Fprintf(&line, "%-*s  ", widths[i], cell)
		}
		fmt.Println(strings.TrimRight(line.String(), " "))
	}
}

// Yes says whether a bound held, in capitals when it did not, so that a
// failure stands out in a table.
func Yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
