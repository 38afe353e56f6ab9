package main

// Hand-written protobuf messages for the echo service. ttrpc 1.1 marshals with gogo's
// proto package, which uses a message's own Marshal/Unmarshal methods when it has them,
// so no generated code is needed.

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// EchoRequest: text = 1, fail_code = 2, fail_message = 3.
type EchoRequest struct {
	Text        string
	FailCode    int32
	FailMessage string
}

// EchoResponse: text = 1, repeated KeyValue metadata = 2, has_deadline = 3.
type EchoResponse struct {
	Text        string
	Metadata    []KeyValue
	HasDeadline bool
}

// KeyValue: key = 1, value = 2.
type KeyValue struct {
	Key   string
	Value string
}

func (m *EchoRequest) Reset()         { *m = EchoRequest{} }
func (m *EchoRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*EchoRequest) ProtoMessage()    {}

func (m *EchoResponse) Reset()         { *m = EchoResponse{} }
func (m *EchoResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*EchoResponse) ProtoMessage()    {}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (m *EchoRequest) Marshal() ([]byte, error) {
	var b []byte
	b = appendString(b, 1, m.Text)
	b = appendVarint(b, 2, uint64(int64(m.FailCode)))
	b = appendString(b, 3, m.FailMessage)
	return b, nil
}

func (m *EchoRequest) Unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Text = string(v)
		case num == 2 && typ == protowire.VarintType:
			m.FailCode = int32(n)
		case num == 3 && typ == protowire.BytesType:
			m.FailMessage = string(v)
		}
	})
}

func (m *EchoResponse) Marshal() ([]byte, error) {
	var b []byte
	b = appendString(b, 1, m.Text)
	for _, kv := range m.Metadata {
		var entry []byte
		entry = appendString(entry, 1, kv.Key)
		entry = appendString(entry, 2, kv.Value)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	if m.HasDeadline {
		b = appendVarint(b, 3, 1)
	}
	return b, nil
}

func (m *EchoResponse) Unmarshal(b []byte) error {
	var nested error
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Text = string(v)
		case num == 2 && typ == protowire.BytesType:
			var kv KeyValue
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
				if typ != protowire.BytesType {
					return
				}
				if num == 1 {
					kv.Key = string(v)
				} else if num == 2 {
					kv.Value = string(v)
				}
			}); err != nil {
				nested = err
			}
			m.Metadata = append(m.Metadata, kv)
		case num == 3 && typ == protowire.VarintType:
			m.HasDeadline = n != 0
		}
	})
	if err != nil {
		return err
	}
	return nested
}

// eachField walks the fields of an encoded message; unknown fields are skipped, as protobuf requires.
func eachField(b []byte, visit func(num protowire.Number, typ protowire.Type, bytes []byte, varint uint64)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			visit(num, typ, v, 0)
			b = b[n:]
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			visit(num, typ, nil, v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

// sortedMetadata flattens ttrpc metadata into key/value pairs in a stable order.
func sortedMetadata(md map[string][]string) []KeyValue {
	var out []KeyValue
	for k, values := range md {
		for _, v := range values {
			out = append(out, KeyValue{Key: k, Value: v})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
