package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestAuthorized(t *testing.T) {
	tok := New("s3cret")
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{"Bearer s3cret", true},
		{"bearer s3cret", true},
		{"BEARER  s3cret ", true},
		{"Bearer s3cre", false},
		{"Bearer s3cretx", false},
		{"Basic s3cret", false},
		{"s3cret", false},
		{"Bearer", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if got := tok.Authorized(r); got != tt.want {
			t.Errorf("Authorization %q: %v, want %v", tt.header, got, tt.want)
		}
	}
}
