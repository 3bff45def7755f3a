package gatewayworker

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/wssgate/wssgate/gateway"
)

func TestSerialize(t *testing.T) {
	point1 := 0.1 // a variable: constant arithmetic would be exact
	nested := &Array{}
	nested.Set(StringKey("n"), int64(2))
	nested.Set(StringKey("tags"), List("a", "b"))
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"null", nil, "N;"},
		{"true", true, "b:1;"},
		{"false", false, "b:0;"},
		{"int", 42, "i:42;"},
		{"negative int", int64(-7), "i:-7;"},
		{"uint32", uint32(4294967295), "i:4294967295;"},
		{"float", 0.1, "d:0.1;"},
		{"float whole", 1.0, "d:1;"},
		{"float negative zero", math.Copysign(0, -1), "d:-0;"},
		{"float 1e25", 1e25, "d:1.0E+25;"},
		{"float 1e17", 1e17, "d:1.0E+17;"},
		{"float 1e16", 1e16, "d:10000000000000000;"},
		{"float 0.0001", 0.0001, "d:0.0001;"},
		{"float 0.00001", 0.00001, "d:1.0E-5;"},
		{"float 1.5e-7", 1.5e-7, "d:1.5E-7;"},
		{"float 123.456", 123.456, "d:123.456;"},
		{"float 0.1+0.2", point1 + 0.2, "d:0.30000000000000004;"},
		{"float inf", math.Inf(1), "d:INF;"},
		{"float -inf", math.Inf(-1), "d:-INF;"},
		{"float nan", math.NaN(), "d:NAN;"},
		{"string", "it's \"x\"\\", `s:9:"it's "x"\";`},
		{"binary string", "a\x00\xff", "s:3:\"a\x00\xff\";"},
		{"utf-8 string counts bytes", "é", `s:2:"é";`},
		{"bytes", []byte("hi"), `s:2:"hi";`},
		{"list", []any{"a", int64(1), nil}, `a:3:{i:0;s:1:"a";i:1;i:1;i:2;N;}`},
		{"string list", []string{"g1", "g2"}, `a:2:{i:0;s:2:"g1";i:1;s:2:"g2";}`},
		{"array in order", nested, `a:2:{s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`},
		{"map sorted, numeric keys as ints", map[string]any{"b": 1, "a": "x", "7": true}, `a:3:{i:7;b:1;s:1:"a";s:1:"x";s:1:"b";i:1;}`},
		{"empty array", &Array{}, "a:0:{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Serialize(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			// Reading it back gives the same bytes (maps aside, the
			// form is canonical).
			v, err := Unserialize(got)
			if err != nil {
				t.Fatalf("Unserialize: %v", err)
			}
			again, err := Serialize(v)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("round trip: got %s, %v; want %s", again, err, got)
			}
		})
	}
	for _, bad := range []any{struct{}{}, uint64(math.MaxUint64), []any{make(chan int)}, map[int]int{}} {
		if _, err := Serialize(bad); !errors.Is(err, ErrSerialize) {
			t.Errorf("Serialize(%T): got %v, want ErrSerialize", bad, err)
		}
	}
}

func TestUnserialize(t *testing.T) {
	tests := []struct {
		in   string
		want string // Serialize of the result
	}{
		{"i:+5;", "i:5;"},
		{"i:-0;", "i:0;"},
		{"d:1;", "d:1;"},
		{"d:.5;", "d:0.5;"},
		{"d:5.;", "d:5;"},
		{"d:1e3;", "d:1000;"},
		{"d:-1.5E-3;", "d:-0.0015;"},
		{"d:1e999;", "d:INF;"},
		{`a:1:{s:1:"5";i:1;}`, `a:1:{i:5;i:1;}`},                 // numeric string key is an int key
		{`a:1:{s:2:"05";i:1;}`, `a:1:{s:2:"05";i:1;}`},           // not canonical: stays a string
		{`a:1:{s:2:"-0";i:1;}`, `a:1:{s:2:"-0";i:1;}`},           // not canonical either
		{`a:2:{i:0;s:1:"a";i:0;s:1:"b";}`, `a:1:{i:0;s:1:"b";}`}, // repeated key: first place, last value
		{`a:2:{i:1;N;s:1:"1";b:1;}`, `a:1:{i:1;b:1;}`},
		{`s:0:"";`, `s:0:"";`},
		{`a:1:{i:0;a:1:{i:0;a:0:{}}}`, `a:1:{i:0;a:1:{i:0;a:0:{}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Unserialize([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Serialize(v)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestUnserializeRejects(t *testing.T) {
	tests := []struct {
		in    string
		trunc bool
	}{
		{"", true},
		{"N", true},
		{"N;x", false},
		{"b:2;", false},
		{"b:1", true},
		{"i:;", false},
		{"i:1x;", false},
		{"i:99999999999999999999;", false},
		{"i:1", true},
		{"d:;", false},
		{"d:0x10;", false},
		{"d:inf;", false},
		{"d:1e;", false},
		{"d:1_0;", false},
		{`s:5:"ab";`, true},
		{`s:2:"ab"`, true},
		{`s:2:"abc";`, false},
		{`s:-1:"";`, false},
		{`s:99999999999:"";`, false},
		{`S:1:"a";`, false},
		{"a:1:{}", false},
		{"a:9999999999:{}", false},
		{"a:2147483647:{", true},
		{"a:1:{i:0;N;", true},
		{"a:1:{N;N;}", false},
		{"a:1:{d:1;N;}", false},
		{"a:0:{};", false},
		{`O:8:"stdClass":0:{}`, false},
		{"r:1;", false},
		{"R:1;", false},
		{`E:7:"Foo:Bar";`, false},
		{strings.Repeat("a:1:{i:0;", maxDepth+1) + "N;" + strings.Repeat("}", maxDepth+1), false},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			v, err := Unserialize([]byte(tt.in))
			if !errors.Is(err, ErrSerialize) {
				t.Fatalf("got %v, %v; want ErrSerialize", v, err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %T, want *SyntaxError", err)
			}
			if got := errors.Is(err, ErrTruncated); got != tt.trunc {
				t.Errorf("ErrTruncated: got %v, want %v (%v)", got, tt.trunc, err)
			}
		})
	}
	// At the depth limit it still reads.
	ok := strings.Repeat("a:1:{i:0;", maxDepth) + "N;" + strings.Repeat("}", maxDepth)
	if _, err := Unserialize([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", maxDepth, err)
	}
}

func TestArray(t *testing.T) {
	a := &Array{}
	a.Append("x")               // 0
	a.Set(IntKey(5), "y")       // 5
	a.Append("z")               // 6
	a.Set(StringKey("k"), "v")  // "k"
	a.Set(StringKey("5"), "y2") // replaces 5 in place
	if !a.Delete(IntKey(0)) || a.Delete(IntKey(0)) {
		t.Errorf("Delete: want true then false")
	}
	got, _ := Serialize(a)
	if want := `a:3:{i:5;s:2:"y2";i:6;s:1:"z";s:1:"k";s:1:"v";}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Past 8 entries lookups go through an index; it must stay right
	// across sets and deletes.
	b := &Array{}
	for i := range 20 {
		b.Set(StringKey(strings.Repeat("k", i+1)), int64(i))
	}
	b.Delete(StringKey("kkk"))
	b.Set(StringKey("kkkk"), "four")
	b.Set(StringKey("new"), "n")
	if v, ok := b.Get(StringKey("kkkk")); !ok || v != "four" {
		t.Errorf("Get kkkk: got %v, %v", v, ok)
	}
	if _, ok := b.Get(StringKey("kkk")); ok {
		t.Errorf("Get kkk: deleted, still found")
	}
	if v, ok := b.Get(StringKey("new")); !ok || v != "n" || b.Len() != 20 {
		t.Errorf("Get new: got %v, %v, len %d", v, ok, b.Len())
	}
	if List("a", "b").IsList() != true || a.IsList() {
		t.Errorf("IsList wrong")
	}
}

func TestReplaceRecursive(t *testing.T) {
	tests := []struct {
		name, base, repl, want string
	}{
		{"captured updateSession",
			`a:2:{s:4:"role";s:1:"x";s:1:"n";i:1;}`,
			`a:2:{s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`,
			`a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`},
		{"nested arrays merge, lists by index",
			`a:1:{s:1:"t";a:3:{i:0;s:1:"a";i:1;s:1:"b";i:2;s:1:"c";}}`,
			`a:1:{s:1:"t";a:1:{i:1;s:1:"X";}}`,
			`a:1:{s:1:"t";a:3:{i:0;s:1:"a";i:1;s:1:"X";i:2;s:1:"c";}}`},
		{"array replaces a scalar",
			`a:1:{s:1:"k";i:1;}`, `a:1:{s:1:"k";a:1:{i:0;b:1;}}`, `a:1:{s:1:"k";a:1:{i:0;b:1;}}`},
		{"scalar replaces an array",
			`a:1:{s:1:"k";a:1:{i:0;b:1;}}`, `a:1:{s:1:"k";N;}`, `a:1:{s:1:"k";N;}`},
		{"new keys go at the end",
			`a:1:{s:1:"a";i:1;}`, `a:2:{s:1:"z";i:2;s:1:"a";i:3;}`, `a:2:{s:1:"a";i:3;s:1:"z";i:2;}`},
		{"int and numeric string keys are one key",
			`a:1:{i:7;s:1:"a";}`, `a:1:{s:1:"7";s:1:"b";}`, `a:1:{i:7;s:1:"b";}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UpdateSession([]byte(tt.base), []byte(tt.repl))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	// Inputs are left alone.
	base, _ := Unserialize([]byte(`a:1:{s:1:"t";a:1:{i:0;i:1;}}`))
	repl, _ := Unserialize([]byte(`a:1:{s:1:"t";a:1:{i:0;i:2;}}`))
	ReplaceRecursive(base.(*Array), repl.(*Array))
	if b, _ := Serialize(base); string(b) != `a:1:{s:1:"t";a:1:{i:0;i:1;}}` {
		t.Errorf("base changed: %s", b)
	}
}

func TestUpdateSession(t *testing.T) {
	tests := []struct {
		name, old, update, want string
		wantErr                 bool
	}{
		{"no session: stored as sent", "", `a:1:{s:1:"a";i:1;}`, `a:1:{s:1:"a";i:1;}`, false},
		{"falsy \"0\": stored as sent", "0", `x`, `x`, false},
		{"merge", `a:1:{s:1:"a";i:1;}`, `a:1:{s:1:"b";i:2;}`, `a:2:{s:1:"a";i:1;s:1:"b";i:2;}`, false},
		{"stored not an array", `i:1;`, `a:0:{}`, "", true},
		{"update not an array", `a:0:{}`, `s:1:"x";`, "", true},
		{"update garbage", `a:0:{}`, `zzz`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UpdateSession([]byte(tt.old), []byte(tt.update))
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSerialize) {
				t.Errorf("error %v does not wrap ErrSerialize", err)
			}
		})
	}
}

func TestSessionJSON(t *testing.T) {
	tests := []struct {
		name, php, json string
	}{
		{"none", "", "{}"},
		{"captured", `a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`, `{"role":"x","n":2,"tags":["a","b"]}`},
		{"list at the top is an object", `a:2:{i:0;s:1:"a";i:1;s:1:"b";}`, `{"0":"a","1":"b"}`},
		{"nested map with int keys", `a:1:{s:1:"m";a:1:{i:3;d:0.5;}}`, `{"m":{"3":0.5}}`},
		{"empty nested is a list", `a:1:{s:1:"e";a:0:{}}`, `{"e":[]}`},
		{"escapes", "a:1:{s:1:\"s\";s:6:\"a/b\"é\";}", `{"s":"a\/b\"\u00e9"}`},
		{"null", "N;", "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SessionToJSON([]byte(tt.php))
			if err != nil || string(got) != tt.json {
				t.Errorf("SessionToJSON: got %s, %v; want %s", got, err, tt.json)
			}
		})
	}
	back := []struct{ json, php string }{
		{`{"role":"x","n":2,"tags":["a","b"]}`, `a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`},
		{`{"z":1,"a":1.5,"big":12345678901234567890,"t":true,"nil":null}`, `a:5:{s:1:"z";i:1;s:1:"a";d:1.5;s:3:"big";d:1.2345678901234567E+19;s:1:"t";b:1;s:3:"nil";N;}`},
		{`{"7":"a","07":"b"}`, `a:2:{i:7;s:1:"a";s:2:"07";s:1:"b";}`},
		{`[]`, `a:0:{}`},
		{`null`, ``},
	}
	for _, tt := range back {
		t.Run(tt.json, func(t *testing.T) {
			got, err := SessionFromJSON([]byte(tt.json))
			if err != nil || string(got) != tt.php {
				t.Errorf("SessionFromJSON: got %s, %v; want %s", got, err, tt.php)
			}
		})
	}
	for _, bad := range []string{`"x"`, `1`, `{`, `{} {}`, `{"a":}`} {
		if _, err := SessionFromJSON([]byte(bad)); !errors.Is(err, ErrSerialize) {
			t.Errorf("SessionFromJSON(%s): got %v, want ErrSerialize", bad, err)
		}
	}
	if _, err := SessionToJSON([]byte(`i:1;`)); !errors.Is(err, ErrSerialize) {
		t.Errorf("SessionToJSON(int): got %v, want ErrSerialize", err)
	}
	if _, err := SessionToJSON([]byte(`a:1:{s:1:"f";d:NAN;}`)); !errors.Is(err, ErrSerialize) {
		t.Errorf("SessionToJSON(NAN): got %v, want ErrSerialize", err)
	}

	m, err := SessionToMap([]byte(`a:2:{s:4:"name";s:5:"alice";s:1:"n";i:2;}`))
	if err != nil || m["name"] != "alice" || m["n"] != float64(2) {
		t.Errorf("SessionToMap: got %v, %v", m, err)
	}
	php, err := SessionFromMap(map[string]any{"name": "alice", "n": float64(2), "l": []any{"x"}})
	if want := `a:3:{s:1:"l";a:1:{i:0;s:1:"x";}s:1:"n";i:2;s:4:"name";s:5:"alice";}`; err != nil || string(php) != want {
		t.Errorf("SessionFromMap: got %s, %v; want %s", php, err, want)
	}
	if php, err := SessionFromMap(nil); err != nil || len(php) != 0 {
		t.Errorf("SessionFromMap(nil): got %q, %v", php, err)
	}
}

func TestParseStr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `a:0:{}`},
		{"a=1&b=x+y", `a:2:{s:1:"a";s:1:"1";s:1:"b";s:3:"x y";}`},
		{"a[]=1&a[]=2", `a:1:{s:1:"a";a:2:{i:0;s:1:"1";i:1;s:1:"2";}}`},
		{"a[x]=1&a[y][]=2", `a:1:{s:1:"a";a:2:{s:1:"x";s:1:"1";s:1:"y";a:1:{i:0;s:1:"2";}}}`},
		{"a.b=1&c%20d=2&e", `a:3:{s:3:"a_b";s:1:"1";s:3:"c_d";s:1:"2";s:1:"e";s:0:"";}`},
		{"token=abc%2Fdef", `a:1:{s:5:"token";s:7:"abc/def";}`},
		{"5=x", `a:1:{i:5;s:1:"x";}`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _ := Serialize(ParseStr(tt.in))
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// The compile-time check that PHPSessionCodec is a gateway.SessionCodec.
var _ gateway.SessionCodec = PHPSessionCodec{}

func TestPHPSessionCodec(t *testing.T) {
	var codec PHPSessionCodec
	for _, tt := range []struct {
		name, php string
		want      gateway.Session
	}{
		{"none", "", gateway.Session{}},
		{"null", "N;", gateway.Session{}},
		{"empty", "a:0:{}", gateway.Session{}},
		{"captured", `a:3:{s:4:"role";s:1:"x";s:1:"n";i:2;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`,
			gateway.Session{"role": "x", "n": 2.0, "tags": []any{"a", "b"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := codec.Unmarshal([]byte(tt.php))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmarshal(%q) = %#v, %v; want %#v", tt.php, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{`i:1;`, `a:1:{`, `x`} {
		if s, err := codec.Unmarshal([]byte(bad)); err == nil || s != nil {
			t.Errorf("Unmarshal(%q) = %v, %v; want an error", bad, s, err)
		}
	}
	for _, tt := range []struct {
		s    gateway.Session
		want string
	}{
		{nil, ""},
		{gateway.Session{}, "a:0:{}"},
		{gateway.Session{"n": 2.0, "name": "alice", "m": gateway.Session{"k": true}},
			`a:3:{s:1:"m";a:1:{s:1:"k";b:1;}s:1:"n";i:2;s:4:"name";s:5:"alice";}`},
	} {
		if got, err := codec.Marshal(tt.s); err != nil || string(got) != tt.want {
			t.Errorf("Marshal(%v) = %q, %v; want %q", tt.s, got, err, tt.want)
		}
	}
}
