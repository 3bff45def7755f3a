package gatewayworker_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPHPSyntax runs `php -l` on every .php file of this example (not
// on vendor/, which composer fills). Without php the test skips, except
// with CI=true, where it fails: CI installs Debian's php-cli.
func TestPHPSyntax(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php not found, and CI=true: CI must install Debian's php-cli (apt-get install -y php-cli)")
		}
		t.Skip("php not found: install php-cli (apt-get install -y php-cli) to check the example's PHP syntax")
	}
	var files []string
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (d.Name() == "vendor" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".php") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Events.php", "start_businessworker.php"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing; found %q", want, files)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, php, "-l", f).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "No syntax errors detected") {
				t.Errorf("php -l %s: %v\n%s", f, err, out)
			}
		})
	}
}
