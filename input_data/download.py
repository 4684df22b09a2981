"""`python -m input_data.download`: the downloader in input_data/tools/download.py."""

if __name__ == '__main__':
  from input_data.tools import cli, download  # pylint: disable=g-import-not-at-top
  cli.start(download.main)
