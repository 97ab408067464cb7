package stt

import (
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxONNXBytes caps a model file koel inspects before handing it to
// sherpa-onnx (protobuf itself cannot address more than 2 GiB).
const maxONNXBytes = 2 << 30

// onnxInfo is what koel reads from an ONNX model before sherpa-onnx loads
// it: sherpa-onnx ends the process (exit or abort) on a model that is not
// ONNX, lacks its metadata or does not fit its neighbours, so those faults
// must be found here first.
type onnxInfo struct {
	meta    map[string]string
	inputs  []onnxValue
	outputs []onnxValue
}

// onnxValue is a graph input or output: its name and shape. A dimension is
// -1 when it is symbolic or unknown.
type onnxValue struct {
	name  string
	shape []int64
}

// lastDim is the value's last dimension, -1 when unknown.
func (v onnxValue) lastDim() int64 {
	if len(v.shape) == 0 {
		return -1
	}
	return v.shape[len(v.shape)-1]
}

// dim is dimension i, -1 when unknown or missing.
func (v onnxValue) dim(i int) int64 {
	if i >= len(v.shape) {
		return -1
	}
	return v.shape[i]
}

var errNotONNX = errors.New("not an ONNX model")

// readONNX inspects the model file at path.
func readONNX(path string) (onnxInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return onnxInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return onnxInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return onnxInfo{}, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > maxONNXBytes {
		return onnxInfo{}, fmt.Errorf("%s: %d bytes, more than an ONNX file can hold", path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxONNXBytes))
	if err != nil {
		return onnxInfo{}, err
	}
	info, err := parseONNX(data)
	if err != nil {
		return onnxInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// parseONNX reads the metadata and the graph's inputs and outputs from a
// serialized onnx.ModelProto. Field numbers are from onnx/onnx.proto3.
func parseONNX(data []byte) (onnxInfo, error) {
	info := onnxInfo{meta: map[string]string{}}
	var sawGraph, sawIR bool
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType: // ir_version
			sawIR = n > 0
		case num == 7 && typ == protowire.BytesType: // graph
			sawGraph = true
			return parseGraph(v, &info)
		case num == 14 && typ == protowire.BytesType: // metadata_props
			var key, val string
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if typ == protowire.BytesType {
					switch num {
					case 1:
						key = string(v)
					case 2:
						val = string(v)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			info.meta[key] = val
		}
		return nil
	})
	if err != nil {
		return onnxInfo{}, fmt.Errorf("%w: %w", errNotONNX, err)
	}
	if !sawIR || !sawGraph {
		return onnxInfo{}, fmt.Errorf("%w: no IR version or no graph", errNotONNX)
	}
	return info, nil
}

func parseGraph(data []byte, info *onnxInfo) error {
	return eachField(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType || (num != 11 && num != 12) {
			return nil
		}
		val, err := parseValueInfo(v)
		if err != nil {
			return err
		}
		if num == 11 {
			info.inputs = append(info.inputs, val)
		} else {
			info.outputs = append(info.outputs, val)
		}
		return nil
	})
}

// parseValueInfo reads a ValueInfoProto: name (1), type (2) → tensor_type
// (1) → shape (2) → dim (1) → dim_value (1) | dim_param (2).
func parseValueInfo(data []byte) (onnxValue, error) {
	var out onnxValue
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			out.name = string(v)
		case 2:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if num != 2 || typ != protowire.BytesType {
						return nil
					}
					return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
						if num != 1 || typ != protowire.BytesType {
							return nil
						}
						d := int64(-1)
						err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
							if num == 1 && typ == protowire.VarintType && int64(n) > 0 {
								d = int64(n)
							}
							return nil
						})
						out.shape = append(out.shape, d)
						return err
					})
				})
			})
		}
		return nil
	})
	return out, err
}

// eachField walks the fields of one protobuf message. For bytes fields v
// is the payload; for varints n is the value.
func eachField(data []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(data) > 0 {
		num, typ, l := protowire.ConsumeTag(data)
		if l < 0 {
			return protowire.ParseError(l)
		}
		if num < 1 {
			return errors.New("invalid field number")
		}
		data = data[l:]
		var (
			v []byte
			n uint64
		)
		switch typ {
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(data)
		default:
			l = protowire.ConsumeFieldValue(num, typ, data)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		data = data[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
