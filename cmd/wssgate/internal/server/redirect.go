package server

import (
	"net"
	"net/http"
	"strings"
)

// redirectHandler sends every plain HTTP request to the same host and
// path over https, on the https listener's port.
func redirectHandler(httpsAddr net.Addr) http.Handler {
	var port string
	if httpsAddr != nil {
		port = PortSuffix(httpsAddr.String())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "400 Bad Request: no Host header", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect
		}
		http.Redirect(w, r, "https://"+host+port+r.URL.RequestURI(), code)
	})
}

// PortSuffix is ":port" for the port of addr ("host:port"), or "" for
// 443 and for an address without a port: what a URL to the https
// listener needs after its host.
func PortSuffix(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return ""
	}
	return ":" + port
}
