// ttrpc-peer is the Go side of boxd's ttrpc interop test, built on the containerd/ttrpc
// library that containerd 1.6 and its shims use.
//
//	ttrpc-peer serve SOCKET
//	    serves boxd.e2e.v1.Echo/Echo on SOCKET until SIGTERM; prints "ready" once listening.
//	ttrpc-peer call [-text T] [-fail CODE:MESSAGE] [-md key=value]... [-timeout D] [-service S] [-method M] SOCKET
//	    makes one unary call and prints the outcome as one JSON line:
//	    {"text":...,"metadata":{...},"hasDeadline":...} or {"code":N,"message":"..."}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	echoService = "boxd.e2e.v1.Echo"
	echoMethod  = "Echo"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "call":
		err = call(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ttrpc-peer serve SOCKET | ttrpc-peer call [flags] SOCKET")
	os.Exit(2)
}

// echo answers with the text and the metadata it received, or with the status it was asked to fail with.
func echo(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req EchoRequest
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	if req.FailCode != 0 {
		return nil, status.Error(codes.Code(req.FailCode), req.FailMessage)
	}
	md, _ := ttrpc.GetMetadata(ctx)
	_, hasDeadline := ctx.Deadline()
	return &EchoResponse{Text: req.Text, Metadata: sortedMetadata(md), HasDeadline: hasDeadline}, nil
}

func serve(args []string) error {
	if len(args) != 1 {
		usage()
	}
	server, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		return err
	}
	server.Register(echoService, map[string]ttrpc.Method{echoMethod: echo})
	_ = os.Remove(args[0])
	listener, err := net.Listen("unix", args[0])
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	fmt.Println("ready")
	if err := server.Serve(context.Background(), listener); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		return err
	}
	return nil
}

type metadataFlag []string

func (m *metadataFlag) String() string     { return strings.Join(*m, ",") }
func (m *metadataFlag) Set(v string) error { *m = append(*m, v); return nil }

type callResult struct {
	Text        string              `json:"text"`
	Metadata    map[string][]string `json:"metadata"`
	HasDeadline bool                `json:"hasDeadline"`
}

type callError struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

func call(args []string) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	text := fs.String("text", "", "text to echo")
	fail := fs.String("fail", "", "ask the server to fail with CODE:MESSAGE")
	service := fs.String("service", echoService, "service name")
	method := fs.String("method", echoMethod, "method name")
	timeout := fs.Duration("timeout", 0, "call deadline (0 = none)")
	var md metadataFlag
	fs.Var(&md, "md", "metadata key=value (repeatable)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}

	req := &EchoRequest{Text: *text}
	if *fail != "" {
		code, message, _ := strings.Cut(*fail, ":")
		n, err := strconv.Atoi(code)
		if err != nil {
			return fmt.Errorf("bad -fail %q: %w", *fail, err)
		}
		req.FailCode, req.FailMessage = int32(n), message
	}

	conn, err := net.Dial("unix", fs.Arg(0))
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	ctx := context.Background()
	if len(md) > 0 {
		meta := ttrpc.MD{}
		for _, kv := range md {
			k, v, _ := strings.Cut(kv, "=")
			meta.Append(k, v)
		}
		ctx = ttrpc.WithMetadata(ctx, meta)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	var resp EchoResponse
	if err := client.Call(ctx, *service, *method, req, &resp); err != nil {
		st, ok := status.FromError(err)
		if !ok {
			return err
		}
		return printJSON(callError{Code: int32(st.Code()), Message: st.Message()})
	}
	out := callResult{Text: resp.Text, Metadata: map[string][]string{}, HasDeadline: resp.HasDeadline}
	for _, kv := range resp.Metadata {
		out.Metadata[kv.Key] = append(out.Metadata[kv.Key], kv.Value)
	}
	return printJSON(out)
}

func printJSON(v interface{}) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}
