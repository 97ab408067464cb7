package stt

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianPython is Debian's interpreter, which has python3-onnx (an
// interpreter earlier on PATH, such as pyenv's, may not).
const debianPython = "/usr/bin/python3"

// tinyModels writes the tiny random-weight sherpa models named by specs
// ("online", "offline", "online,wrong-joiner", ...) under a fresh
// directory and returns their directories in order. The models decode
// garbage: they exercise loading, streaming and errors, not accuracy.
func tinyModels(tb testing.TB, specs ...string) []string {
	tb.Helper()
	py := debianPython
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	root := tb.TempDir()
	args := []string{filepath.Join("testdata", "sherpa_tiny_model.py")}
	dirs := make([]string, len(specs))
	for i, s := range specs {
		dirs[i] = filepath.Join(root, strings.NewReplacer(",", "-").Replace(s))
		args = append(args, s+"="+dirs[i])
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(tb.Context(), py, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("write tiny sherpa models (needs Debian's python3-onnx and python3-numpy; make test installs them): %v: %s", err, stderr.String())
	}
	return dirs
}

func TestInspectSherpaModel(t *testing.T) {
	d := tinyModels(t, "online", "offline", "online,no-metadata", "online,wrong-joiner", "online,wrong-vocab",
		"offline,no-metadata", "offline,wrong-vocab", "offline-transducer")
	on, off := d[0], d[1]

	copyDir := func(t *testing.T, src string, edit func(dir string)) string {
		t.Helper()
		dst := t.TempDir()
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		edit(dst)
		return dst
	}
	write := func(name string, data []byte) func(string) {
		return func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func(string) {
		return func(dir string) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	truncate := func(name string) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	garbage := bytes.Repeat([]byte{0xff, 0x13, 0x37, 0x00, 0x42}, 300)

	tests := []struct {
		name      string
		dir       func(t *testing.T) string
		streaming bool
		want      string // substring of the error; "" = valid
		kind      sherpaModelKind
	}{
		{"online ok", func(*testing.T) string { return on }, true, "", kindTransducer},
		{"offline tdnn ok", func(*testing.T) string { return off }, false, "", kindTdnnCTC},
		{"offline transducer ok", func(*testing.T) string { return d[7] }, false, "", kindTransducer},
		{"streaming lstm as offline model", func(*testing.T) string { return on }, false, `model_type "lstm" is not an offline transducer`, 0},
		{"offline transducer as streaming", func(*testing.T) string { return d[7] }, true, `"encoder_dims" is missing`, 0},
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, true, "no such file", 0},
		{"a file, not a dir", func(*testing.T) string { return filepath.Join(on, "tokens.txt") }, true, "not a directory", 0},
		{"empty dir", func(t *testing.T) string { return t.TempDir() }, true, "tokens.txt", 0},
		{"offline dir as streaming", func(*testing.T) string { return off }, true, "streaming transducer", 0},
		{"no joiner", func(t *testing.T) string { return copyDir(t, on, remove("joiner.onnx")) }, true, "no joiner", 0},
		{"no decoder", func(t *testing.T) string { return copyDir(t, on, remove("decoder.onnx")) }, true, "no decoder", 0},
		{"garbage encoder", func(t *testing.T) string { return copyDir(t, on, write("encoder.onnx", garbage)) }, true, "not an ONNX model", 0},
		{"empty encoder", func(t *testing.T) string { return copyDir(t, on, write("encoder.onnx", nil)) }, true, "not an ONNX model", 0},
		{"truncated joiner", func(t *testing.T) string { return copyDir(t, on, truncate("joiner.onnx")) }, true, "not an ONNX model", 0},
		{"garbage offline model", func(t *testing.T) string { return copyDir(t, off, write("model.onnx", garbage)) }, false, "not an ONNX model", 0},
		{"encoder without metadata", func(*testing.T) string { return d[2] }, true, `metadata "num_encoder_layers" is missing`, 0},
		{"joiner does not fit encoder", func(*testing.T) string { return d[3] }, true, "do not fit together", 0},
		{"joiner wider than tokens", func(*testing.T) string { return d[4] }, true, "joiner output width vs vocab_size", 0},
		{"offline without metadata", func(*testing.T) string { return d[5] }, false, `model_type ""`, 0},
		{"offline vocab mismatch", func(*testing.T) string { return d[6] }, false, "vocab_size 45 but tokens.txt has 40", 0},
		{"garbage tokens", func(t *testing.T) string { return copyDir(t, on, write("tokens.txt", []byte("hello\nworld\n"))) }, true, "tokens.txt line 1", 0},
		{"duplicate token id", func(t *testing.T) string { return copyDir(t, on, write("tokens.txt", []byte("a 0\nb 0\n"))) }, true, "new id", 0},
		{"token ids with a gap", func(t *testing.T) string { return copyDir(t, on, write("tokens.txt", []byte("a 0\nb 2\n"))) }, true, "each once", 0},
		{"fewer tokens than vocab_size", func(t *testing.T) string { return copyDir(t, on, write("tokens.txt", []byte("<blk> 0\na 1\n"))) }, true, "vocab_size 40 but tokens.txt has 2", 0},
		{"two encoders", func(t *testing.T) string {
			return copyDir(t, on, func(dir string) {
				b, _ := os.ReadFile(filepath.Join(dir, "encoder.onnx"))
				write("encoder-epoch-99.onnx", b)(dir)
			})
		}, true, "several encoder*.onnx", 0},
		{"int8 variant preferred", func(t *testing.T) string {
			return copyDir(t, on, func(dir string) {
				b, _ := os.ReadFile(filepath.Join(dir, "encoder.onnx"))
				write("encoder.int8.onnx", b)(dir)
			})
		}, true, "", kindTransducer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir(t)
			m, err := inspectSherpaModel(dir, tt.streaming)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("inspect: %v", err)
				}
				if m.kind != tt.kind || m.tokens == "" || m.featureDim != 80 || m.vocabSize != 40 {
					t.Fatalf("model = %+v", m)
				}
				return
			}
			if err == nil {
				t.Fatalf("inspect %s: no error, want %q", dir, tt.want)
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrUnavailable containing %q", err, tt.want)
			}
		})
	}

	t.Run("int8 chosen", func(t *testing.T) {
		dir := copyDir(t, on, func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "joiner.onnx"))
			write("joiner.int8.onnx", b)(dir)
		})
		m, err := inspectSherpaModel(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(m.joiner) != "joiner.int8.onnx" || filepath.Base(m.encoder) != "encoder.onnx" {
			t.Fatalf("picked %s, %s", m.encoder, m.joiner)
		}
		if m.bpeVocab == "" || !m.upperCase || m.modelType != "lstm" {
			t.Fatalf("model = %+v", m)
		}
	})
}

func TestSherpaConfigDefaults(t *testing.T) {
	c, err := SherpaConfig{ModelDir: "m", DataDir: "d"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.SampleRate != 16000 || c.NumThreads != 1 || c.PoolSize != 4 || c.HotwordsScore != 1.5 || c.MaxVocabularies != 2 || c.Logger == nil {
		t.Fatalf("defaults = %+v", c)
	}
	for _, bad := range []SherpaConfig{
		{DataDir: "d"},
		{ModelDir: "m"},
		{ModelDir: "m", DataDir: "d", SampleRate: 4000},
		{ModelDir: "m", DataDir: "d", NumThreads: 1000},
		{ModelDir: "m", DataDir: "d", PoolSize: 100000},
		{ModelDir: "m", DataDir: "d", MaxVocabularies: 1000},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// FuzzParseONNX feeds arbitrary bytes to the ONNX reader that guards
// sherpa-onnx from bad model files: it must return an error or a result,
// never panic.
func FuzzParseONNX(f *testing.F) {
	for _, dir := range tinyModels(f, "online", "offline") {
		for _, name := range []string{"encoder.onnx", "decoder.onnx", "joiner.onnx", "model.onnx"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				f.Add(b)
				f.Add(b[:len(b)/3])
			}
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x07, 0x3a, 0x00})
	f.Add([]byte{0x72, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseONNX(data)
		if err == nil && info.meta == nil {
			t.Fatal("nil metadata without an error")
		}
	})
}

// FuzzReadTokens feeds arbitrary tokens.txt files to the reader.
func FuzzReadTokens(f *testing.F) {
	f.Add([]byte("<blk> 0\n▁THE 1\nS 2\n"))
	f.Add([]byte("a 0\nb 0\n"))
	f.Add([]byte("  0\nx 1\r\n"))
	f.Add([]byte("x 99999999999\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "tokens.txt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		pieces, err := readTokens(p)
		if err == nil && len(pieces) == 0 {
			t.Fatal("no tokens and no error")
		}
	})
}
