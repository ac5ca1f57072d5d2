# Copied into a working copy of examples/complete (never into a module) to run it against the embedded
# emulator: tests/deploy/test_terraform.py and deploy/local.sh do that, with -var emulator_endpoint=http://127.0.0.1:PORT.
variable "emulator_endpoint" {
  description = "URL of the AWS emulator every service call goes to."
  type        = string
}
