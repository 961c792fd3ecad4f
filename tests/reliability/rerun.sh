#!/bin/bash
# Re-runs the cases of the reliability pass (issue 14's list) against a built binary and
# counts those that behave as expected: `DROPSCOPE=target/debug/dropscope tests/reliability/rerun.sh`.
# Works in a fresh temporary folder; prints one line per case and a count.
B=$(realpath "${DROPSCOPE:-$(command -v dropscope)}")
cd "$(mktemp -d)"
cat > tiny.toml <<'T'
description = "tiny"
seeds = [1, 2]
[data]
samples = 200
features = 8
classes = 3
[model]
hidden = [16]
[train]
epochs = 6
batch_size = 32
[expect.all]
not_causes = ["lr_change"]
[[vary]]
path = "train.lr.schedule"
levels = ["constant", "cosine"]
T
sed 's/tiny/other/; s/train.lr.schedule/train.shuffle/; s/\["constant", "cosine"\]/["every-epoch", "once"]/' tiny.toml > other.toml
n=0; ok=0
case_() { # name expected_code cmd...
  local name=$1 want=$2; shift 2
  out=$("$@" 2>&1); code=$?
  n=$((n+1)); if [ "$code" = "$want" ]; then ok=$((ok+1)); r=ok; else r=UNEXPECTED; fi
  printf "%-4s %-55s exit %s (want %s) %s\n" "$r" "$name" "$code" "$want" "$(echo "$out" | tail -1 | cut -c1-110)"
}
$B run tiny.toml --out s0 --shard 0/2 -q >/dev/null 2>&1; $B run tiny.toml --out s1 --shard 1/2 -q >/dev/null 2>&1
ln -sf s0 link
case_ "merge --out s0 s0 s1" 2 $B merge --out s0 s0 s1
case_ "merge --out ./s0/../s0 s0 s1" 2 $B merge --out ./s0/../s0 s0 s1
case_ "merge --out link(->s0) s0 s1" 2 $B merge --out link s0 s1
case_ "merge --out s1 s0 s1" 2 $B merge --out s1 s0 s1
case_ "merge --out merged s0 s1" 0 $B merge --out merged s0 s1
case_ "merge again onto merged (no --force)" 2 $B merge --out merged s0 s1
case_ "baseline save merged merged" 2 $B baseline save merged merged
case_ "traces of s0 intact after all that" 0 test -s s0/constant/seed-1/trace.csv
$B run tiny.toml --out r1 -q >/dev/null 2>&1
case_ "run other.toml --out r1 (another scenario)" 2 $B run other.toml --out r1 -q
echo data > afile
case_ "run --out afile (a file)" 2 $B run tiny.toml --out afile -q
case_ "baseline save r1 base" 0 $B baseline save r1 base
case_ "baseline save r1 base again (no --force)" 2 $B baseline save r1 base
case_ "baseline save r1 into run folder merged" 2 $B baseline save r1 merged
mkdir -p locked; echo 1 > locked/.dropscope.lock
case_ "second writer (live lock)" 2 $B run tiny.toml --out locked -q
cp -r r1 killed; python3 - <<'P'
import json; m=json.load(open('killed/manifest.json')); c=m['cells'][3]; c['status']='running'; c['steps']=10
p='killed/'+c['dir']+'/trace.csv'; L=open(p).read().split('\n'); open(p,'w').write('\n'.join(L[:11])+'\n')
json.dump(m,open('killed/manifest.json','w'))
P
case_ "check killed run" 1 $B check killed
case_ "check killed run --baseline base (statistical)" 1 $B check killed --baseline base
case_ "report killed run (says incomplete first)" 0 sh -c "$B report killed > rep.txt && head -1 rep.txt | grep -q '^incomplete run' && grep -q 'incomplete run' killed/report/report.md"
case_ "report killed run | head -1 (no panic on a closed pipe)" 0 sh -c "$B report killed 2>err2.txt | head -1 >/dev/null; ! grep -q panicked err2.txt"
case_ "baseline save killed run" 2 $B baseline save killed base2
case_ "merge s0 only" 2 $B merge --out m2 s0
case_ "merge s0 only --allow-partial" 0 $B merge --out m3 s0 --allow-partial
case_ "check the partial merge" 1 $B check m3
cp -r r1 evil; python3 -c "
import json; m=json.load(open('evil/manifest.json')); m['cells'][0]['dir']='/etc'; json.dump(m,open('evil/manifest.json','w'))"
case_ "report with absolute cell dir" 2 $B report evil
cp -r r1 evil2; python3 -c "
import json; m=json.load(open('evil2/manifest.json')); m['cells'][0]['dir']='x/y/../../../victim'; json.dump(m,open('evil2/manifest.json','w'))"
case_ "merge with climbing cell dir" 2 $B merge --out m4 evil2
case_ "baseline save with climbing cell dir" 2 $B baseline save evil2 b4
for spec in "[model]|hidden = [100000, 100000]" "[data]|samples = 1000000000000" "[data]|features = 10000000" "[train]|epochs = 1000000000"; do
  printf 'seeds = [1]\n%s\n%s\n' "${spec%%|*}" "${spec##*|}" > big.toml
  case_ "run with ${spec##*|}" 2 $B run big.toml --out big -q
done
case_ "investigate /dev/zero" 2 timeout 60 $B investigate /dev/zero
printf 'seeds = [1, 1, 1]\n' > dup.toml; case_ "seeds = [1, 1, 1]" 2 $B run dup.toml --out d -q
printf 'seeds = [1]\n[[vary]]\npath = "train.shuffle"\nlevels = ["once", "none"]\n[[vary]]\npath = "train.shuffle"\nlevels = ["every-epoch", "none"]\n' > dup2.toml
case_ "two [[vary]] on one path" 2 $B run dup2.toml --out d -q
case_ "check --alpha 0" 2 $B check r1 --baseline base --alpha 0
case_ "check --alpha 2" 2 $B check r1 --baseline base --alpha 2
case_ "check --alpha NaN" 2 $B check r1 --baseline base --alpha NaN
case_ "check --rtol inf" 2 $B check r1 --baseline base --mode tolerance --rtol inf
case_ "bench detect --series 0" 2 $B bench detect --series 0
printf 'seeds = [1]\n[data]\nsource = "csv"\npath = "/etc/passwd"\nsamples = 10\n' > pw.toml
case_ "data path /etc/passwd (exit 2, first line not echoed)" 0 sh -c "$B run pw.toml --out pw -q 2>err.txt; test \$? = 2 && ! grep -q 'root:x' err.txt"
printf 'step,loss,lr\n' > nanlr.csv; for i in $(seq 0 599); do if [ $((i%4)) = 1 ]; then echo "$i,$(python3 -c "print(2.0-$i/1000)"),nan"; else echo "$i,$(python3 -c "print(2.0-$i/1000)"),0.1"; fi; done >> nanlr.csv
case_ "NaN LR column: no lr events, one warning" 0 sh -c "$B investigate nanlr.csv | grep -q 'NaN or infinite' && ! $B investigate nanlr.csv --format json | grep -q '\"lr_increase\": [1-9]'"
printf 'step,loss,loss\n0,1,2\n' > duph.csv; case_ "duplicated loss header" 2 $B investigate duph.csv
python3 -c "
import json; open('nested.jsonl','w').write('\n'.join(json.dumps([[i]*500 for i in range(40)]) for _ in range(5))+'\n')"
case_ "JSONL with nested arrays (short error)" 2 sh -c "$B investigate nested.jsonl 2>&1 | awk '{ if (length(\$0) > 500) exit 1 }' && exit 2"
python3 -c "
import json; L=['{\"step\": 0, \"loss\": 1.'] + [json.dumps({'step':i,'loss':2-i/1000}) for i in range(1,300)]; open('badfirst.jsonl','w').write('\n'.join(L)+'\n')"
case_ "JSONL with a bad first line (read as JSONL, line 1)" 2 sh -c "$B investigate badfirst.jsonl 2>&1 | grep -q 'badfirst.jsonl:1' && exit 2"
python3 -c "
L=['step,loss']+[f'{i},{2-i/1000}' for i in range(300)]; open('cut.csv','w').write('\n'.join(L)+'\n301')"
case_ "CSV cut mid-line: partial read + warning" 0 sh -c "$B investigate cut.csv | grep -q 'incomplete'"
echo "$ok of $n cases as expected"
