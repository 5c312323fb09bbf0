package terminal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"kubelab/sandbox"
	"kubelab/sandbox/sandboxtest"
	"kubelab/sandbox/shell"
)

// benchBytes is the output of one benchmark iteration.
const benchBytes = 16 << 20

// benchCommand prints benchBytes, then a marker that ends the iteration.
func benchCommand(i int) (marker, command string) {
	marker = fmt.Sprintf("end-%d-mark", i)
	return marker, fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo end-%d''-mark\r", benchBytes, i)
}

func benchSandbox(b *testing.B) sandbox.Sandbox {
	b.Helper()
	prov := shell.New(b.TempDir(), slog.New(slog.DiscardHandler))
	id := sandboxtest.NewID("bench")
	sb, err := prov.Create(context.Background(), id, sandbox.Spec{Owner: "bench", Kind: sandbox.KindShell}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = prov.Delete(context.Background(), id) })
	return sb
}

// BenchmarkOutputBarePTY reads a shell's output straight from its PTY: the
// ceiling for BenchmarkOutputWebsocket.
func BenchmarkOutputBarePTY(b *testing.B) {
	sb := benchSandbox(b)
	term, err := sb.OpenTerminal(context.Background(), 80, 24)
	if err != nil {
		b.Fatal(err)
	}
	defer term.Close()
	buf := make([]byte, readChunk)
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		marker, cmd := benchCommand(i)
		if _, err := term.Write([]byte(cmd)); err != nil {
			b.Fatal(err)
		}
		var tail []byte
		for !bytes.Contains(tail, []byte(marker)) {
			n, err := term.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			tail = append(tail, buf[:n]...)
			tail = tail[max(0, len(tail)-64):]
		}
	}
}

// BenchmarkOutputWebsocket reads the same output through the Hub and a real
// websocket.
func BenchmarkOutputWebsocket(b *testing.B) {
	sb := benchSandbox(b)
	hub := NewHub(Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.ServeWS(w, r, Key{Owner: "bench"}, func(ctx context.Context, _ func(string, string, int)) (sandbox.Terminal, error) {
			return sb.OpenTerminal(ctx, 80, 24)
		}, nil)
	}))
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
	}()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		marker, cmd := benchCommand(i)
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte(cmd)); err != nil {
			b.Fatal(err)
		}
		var tail []byte
		for !bytes.Contains(tail, []byte(marker)) {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			if typ == websocket.BinaryMessage {
				tail = append(tail, data...)
				tail = tail[max(0, len(tail)-64):]
			}
		}
	}
}
