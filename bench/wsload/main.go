// wsload: the WebSocket echo load generator of bench/ws_echo.py.
//
// Opens -c connections to -url, then each sends a -size byte message (text,
// or binary with -binary) and waits for its echo, in a loop (one message in
// flight per connection). After -warmup it prints "START", counts the echoes
// for -d, prints "END" and then one JSON line: the messages echoed in the
// window, the window's length, and this process's CPU use over it (user +
// system time / wall time, in %), so the runner can tell whether the
// generator was the bottleneck.
//
// -idle N instead opens N connections, prints "READY" and keeps them open
// (sending nothing) until stdin closes: for memory measurements.
//
// Built by bench/ws_echo.py against Debian's golang-github-gorilla-websocket-dev
// (GOPATH mode, offline): GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

type result struct {
	Messages   int64   `json:"messages"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"rate"`
	CPUPercent float64 `json:"cpu_percent"`
	Errors     int64   `json:"errors"`
	Extensions string  `json:"extensions"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "wsload: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:8000/ws", "the echo server's URL")
	nconns := flag.Int("c", 50, "concurrent connections")
	size := flag.Int("size", 32, "message size in bytes")
	binary := flag.Bool("binary", false, "binary messages (default: text)")
	compress := flag.Bool("compress", false, "offer permessage-deflate (gorilla: no context takeover)")
	duration := flag.Duration("d", 5*time.Second, "measuring time")
	warmup := flag.Duration("warmup", time.Second, "time before measuring")
	idle := flag.Int("idle", 0, "open this many idle connections, print READY, wait for stdin to close")
	flag.Parse()

	dialer := websocket.Dialer{
		EnableCompression: *compress,
		// larger than a message and its header: each goes as one frame
		ReadBufferSize:   128 * 1024,
		WriteBufferSize:  128 * 1024,
		HandshakeTimeout: 10 * time.Second,
	}
	if *idle > 0 {
		conns := make([]*websocket.Conn, 0, *idle)
		for i := 0; i < *idle; i++ {
			c, _, err := dialer.Dial(*url, nil)
			if err != nil {
				fail("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		fmt.Println("READY")
		io.Copy(io.Discard, os.Stdin)
		for _, c := range conns {
			c.Close()
		}
		return
	}

	payload := bytes.Repeat([]byte("x"), *size)
	msgType := websocket.TextMessage
	if *binary {
		msgType = websocket.BinaryMessage
		rand.New(rand.NewSource(1)).Read(payload)
	}
	conns := make([]*websocket.Conn, *nconns)
	extensions := ""
	for i := range conns {
		c, resp, err := dialer.Dial(*url, nil)
		if err != nil {
			fail("connection %d: %v", i, err)
		}
		extensions = resp.Header.Get("Sec-WebSocket-Extensions")
		if *compress && !strings.Contains(extensions, "permessage-deflate") {
			fail("compression was not negotiated (response: %q)", extensions)
		}
		c.EnableWriteCompression(*compress)
		c.SetReadLimit(int64(*size) * 2)
		conns[i] = c
	}

	var echoed, errors int64
	var stop int32
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			buf := make([]byte, len(payload)+1)
			for atomic.LoadInt32(&stop) == 0 {
				if err := c.WriteMessage(msgType, payload); err != nil {
					atomic.AddInt64(&errors, 1)
					return
				}
				// read the echo into the goroutine's own buffer (ReadMessage
				// would grow a new one for every message: generator CPU)
				kind, r, err := c.NextReader()
				if err == nil {
					_, err = io.ReadFull(r, buf[:len(payload)])
				}
				if err != nil {
					atomic.AddInt64(&errors, 1)
					return
				}
				if n, _ := r.Read(buf[len(payload):]); n != 0 || kind != msgType ||
					buf[0] != payload[0] || buf[len(payload)-1] != payload[len(payload)-1] {
					fail("wrong echo: type %d, longer than sent or different", kind)
				}
				atomic.AddInt64(&echoed, 1)
			}
		}(c)
	}

	time.Sleep(*warmup)
	fmt.Println("START")
	n0, cpu0, t0 := atomic.LoadInt64(&echoed), cpuSeconds(), time.Now()
	time.Sleep(*duration)
	n1, cpu1, t1 := atomic.LoadInt64(&echoed), cpuSeconds(), time.Now()
	fmt.Println("END")
	atomic.StoreInt32(&stop, 1)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	for _, c := range conns {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.Close()
	}
	wall := t1.Sub(t0).Seconds()
	out, _ := json.Marshal(result{
		Messages:   n1 - n0,
		Seconds:    wall,
		Rate:       float64(n1-n0) / wall,
		CPUPercent: 100 * (cpu1 - cpu0) / wall,
		Errors:     atomic.LoadInt64(&errors),
		Extensions: extensions,
	})
	fmt.Println(string(out))
}
