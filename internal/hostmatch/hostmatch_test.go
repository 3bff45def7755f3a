package hostmatch

import "testing"

func TestLookup(t *testing.T) {
	var tab Table[int]
	tab.Add("Chat.Example.com", 1)
	tab.Add("*.ws.example.com", 2)
	tab.Add("chat.example.com.", 3) // the same host again: the first stays
	tests := []struct {
		name   string
		want   int
		wantOK bool
	}{
		{"chat.example.com", 1, true},
		{"CHAT.EXAMPLE.COM.", 1, true},
		{"a.ws.example.com", 2, true},
		{"A.WS.example.com", 2, true},
		{"ws.example.com", 0, false},
		{"a.b.ws.example.com", 0, false},
		{".ws.example.com", 0, false},
		{"other.example.com", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := tab.Lookup(tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestNormalizeDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Normalize("chat.example.com") }); n != 0 {
		t.Errorf("Normalize of a normalized name allocates %v times, want 0", n)
	}
}
