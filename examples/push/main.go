// Command push calls wssgate's push API from another program, as a
// Laravel job or a cron script would: one POST with a bearer token and a
// JSON body, using only net/http.
//
//	export WSSGATE_PUSH_SECRET=change-me
//	go run ./examples/push -data 'hello everyone'
//	go run ./examples/push -method sendToUid -uid 42 -json -data '{"type":"notice","text":"paid"}'
//	go run ./examples/push -method joinGroup -client-id 7f0000010b5600000001 -group room1
//	go run ./examples/push -method getAllClientIdCount
//
// It prints the answer ({"ok":true} or {"result":...}) and exits 1 on an
// error answer.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	api := flag.String("api", "http://127.0.0.1:9181", "base URL of the push API")
	secret := flag.String("secret", "", "push API secret (default: $WSSGATE_PUSH_SECRET)")
	method := flag.String("method", "sendToAll", "API method, such as sendToAll, sendToUid, joinGroup, getAllClientIdCount")
	data := flag.String("data", "", "message to send (a string, or JSON with -json)")
	asJSON := flag.Bool("json", false, "send -data as a JSON value rather than a string")
	clientID := flag.String("client-id", "", "client_id argument")
	uid := flag.String("uid", "", "uid argument")
	group := flag.String("group", "", "group argument")
	timeout := flag.Duration("timeout", 10*time.Second, "give up after this long")
	flag.Parse()
	if *secret == "" {
		*secret = os.Getenv("WSSGATE_PUSH_SECRET")
	}
	if *secret == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: push [-api URL] [-secret S | $WSSGATE_PUSH_SECRET] [-method M] [-data D [-json]] [-client-id ID] [-uid U] [-group G]")
		os.Exit(2)
	}

	body := map[string]any{}
	if isSet("data") {
		if *asJSON {
			if !json.Valid([]byte(*data)) {
				fmt.Fprintln(os.Stderr, "push: -data is not valid JSON")
				os.Exit(2)
			}
			body["data"] = json.RawMessage(*data)
		} else {
			body["data"] = *data
		}
	}
	for k, v := range map[string]string{"client_id": *clientID, "uid": *uid, "group": *group} {
		if v != "" {
			body[k] = v
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	answer, err := call(ctx, *api, *secret, *method, body)
	if answer != "" {
		fmt.Println(answer)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

// isSet reports whether the flag was given on the command line.
func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// call POSTs body to <api>/api/<method> and returns the answer's text.
func call(ctx context.Context, api, secret, method string, body map[string]any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	url := strings.TrimSuffix(api, "/") + "/api/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	// A client of our own: no shared default client, and the context
	// bounds the whole call.
	client := &http.Client{}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 10<<20))
	if err != nil {
		return "", err
	}
	text := strings.TrimSpace(string(out))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("%s: %s", res.Status, e.Error)
		}
		return "", errors.New(res.Status)
	}
	return text, nil
}
