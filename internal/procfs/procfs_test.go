package procfs

import "testing"

func TestVmRSS(t *testing.T) {
	got, err := VmRSS("Name:\twssgate\nVmPeak:\t  9000 kB\nVmRSS:\t    6848 kB\nRssAnon:\t 1 kB\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(6848 * 1024); got != want {
		t.Errorf("got %d, want %d", got, want)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t 12 MB\n", "VmRSS:\t x kB\n", ""} {
		if _, err := VmRSS(bad); err == nil {
			t.Errorf("VmRSS(%q): got no error", bad)
		}
	}
}
