package gateway

import "testing"

func TestStripControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"},
		{"tab\tkept", "tab\tkept"},
		{"\x1b[2Jcleared", "[2Jcleared"},
		{"bell\a and\r\nbreak", "bell andbreak"},
		{"\x00\x7f\u0085", ""},
		{"ünïcödé 中文", "ünïcödé 中文"},
	}
	for _, tt := range tests {
		if got := stripControls(tt.in); got != tt.want {
			t.Errorf("stripControls(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
