"""`python -m input_data.mnist_shift`: the builder of input_data/tools/mnist_shift.py."""

if __name__ == '__main__':
  from input_data.tools import cli, mnist_shift  # pylint: disable=g-import-not-at-top
  cli.start(mnist_shift.main)
