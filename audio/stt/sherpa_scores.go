//go:build cgo && linux && (amd64 || arm64 || arm) && !nosherpa

package stt

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// sherpa-onnx's C API has the per-token scores only in its JSON results,
// which the Go module does not expose. The library is already loaded (the
// module links it), so its functions are looked up by name.
typedef const char *(*koel_online_json_fn)(const void *recognizer, const void *stream);
typedef const char *(*koel_offline_json_fn)(const void *stream);
typedef void (*koel_free_json_fn)(const char *s);

static koel_online_json_fn koel_online_json;
static koel_free_json_fn koel_online_json_free;
static koel_offline_json_fn koel_offline_json;
static koel_free_json_fn koel_offline_json_free;

static int koel_sherpa_bind(void) {
	void *h = dlopen("libsherpa-onnx-c-api.so", RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) {
		return 0;
	}
	koel_online_json = (koel_online_json_fn)dlsym(h, "SherpaOnnxGetOnlineStreamResultAsJson");
	koel_online_json_free = (koel_free_json_fn)dlsym(h, "SherpaOnnxDestroyOnlineStreamResultJson");
	koel_offline_json = (koel_offline_json_fn)dlsym(h, "SherpaOnnxGetOfflineStreamResultAsJson");
	koel_offline_json_free = (koel_free_json_fn)dlsym(h, "SherpaOnnxDestroyOfflineStreamResultJson");
	dlclose(h);
	return koel_online_json && koel_online_json_free && koel_offline_json && koel_offline_json_free;
}

static char *koel_copy_json(const char *j, koel_free_json_fn release) {
	if (j == NULL) {
		return NULL;
	}
	char *c = strdup(j);
	release(j);
	return c;
}

static char *koel_online_result_json(const void *recognizer, const void *stream) {
	return koel_copy_json(koel_online_json(recognizer, stream), koel_online_json_free);
}

static char *koel_offline_result_json(const void *stream) {
	return koel_copy_json(koel_offline_json(stream), koel_offline_json_free);
}
*/
import "C"

import (
	"encoding/json"
	"math"
	"reflect"
	"sync"
	"unsafe"

	sherpa "github.com/k2-fsa/sherpa-onnx-go-linux"
)

// maxResultJSON caps a result's JSON koel reads.
const maxResultJSON = 1 << 20

var (
	scoresOnce sync.Once
	scoresOK   bool
)

// scoresAvailable binds the JSON result functions once. It also checks
// that the module's wrapper types still hold just the C pointer koel reads
// (true of v1.12.25); otherwise results keep confidence 1.
func scoresAvailable() bool {
	scoresOnce.Do(func() {
		scoresOK = onlyPointer(reflect.TypeFor[sherpa.OnlineStream]()) &&
			onlyPointer(reflect.TypeFor[sherpa.OnlineRecognizer]()) &&
			onlyPointer(reflect.TypeFor[sherpa.OfflineStream]()) &&
			C.koel_sherpa_bind() == 1
	})
	return scoresOK
}

func onlyPointer(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.NumField() == 1 && t.Field(0).Name == "impl" &&
		t.Field(0).Type.Kind() == reflect.Pointer && t.Size() == unsafe.Sizeof(uintptr(0))
}

// cPointer is the C object a sherpa wrapper holds (see onlyPointer).
func cPointer[T any](w *T) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(w))
}

// sherpaScores are the per-token log probabilities of a result.
type sherpaScores struct {
	Text       string    `json:"text"`
	YsProbs    []float64 `json:"ys_probs"`     // online results
	YsLogProbs []float64 `json:"ys_log_probs"` // offline results
}

// onlineScores returns the streaming result with its token scores; ok is
// false when they cannot be read.
func onlineScores(r *sherpa.OnlineRecognizer, st *sherpa.OnlineStream) (sherpaScores, bool) {
	if !scoresAvailable() {
		return sherpaScores{}, false
	}
	return parseScores(C.koel_online_result_json(cPointer(r), cPointer(st)))
}

// offlineScores is onlineScores for an offline stream.
func offlineScores(st *sherpa.OfflineStream) (sherpaScores, bool) {
	if !scoresAvailable() {
		return sherpaScores{}, false
	}
	return parseScores(C.koel_offline_result_json(cPointer(st)))
}

func parseScores(j *C.char) (sherpaScores, bool) {
	if j == nil {
		return sherpaScores{}, false
	}
	defer C.free(unsafe.Pointer(j))
	n := C.strlen(j)
	if n > maxResultJSON {
		return sherpaScores{}, false
	}
	var s sherpaScores
	if err := json.Unmarshal(C.GoBytes(unsafe.Pointer(j), C.int(n)), &s); err != nil {
		return sherpaScores{}, false
	}
	return s, true
}

// confidence is the geometric mean of the tokens' probabilities: the
// model's own certainty about the transcript, in [0, 1]. ok is false
// without scores.
func (s sherpaScores) confidence() (float64, bool) {
	lp := s.YsProbs
	if len(lp) == 0 {
		lp = s.YsLogProbs
	}
	if len(lp) == 0 {
		return 0, false
	}
	var sum float64
	for _, v := range lp {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false
		}
		sum += min(v, 0)
	}
	return clamp01(math.Exp(sum / float64(len(lp)))), true
}
