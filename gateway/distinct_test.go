package gateway_test

import (
	"slices"
	"testing"

	"github.com/wssgate/wssgate/gateway"
)

func TestDistinct(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, nil},
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "b", "a", "c", "b"}, []string{"a", "b", "c"}},
		{[]string{"x", "x", "x"}, []string{"x"}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := gateway.Distinct(in); !slices.Equal(got, tt.want) {
			t.Errorf("Distinct(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Distinct changed its argument to %q", in)
		}
	}
}
