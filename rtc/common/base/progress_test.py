"""Progress lines, and lines written from two threads at once."""

import threading
import time

from absl.testing import absltest

from rtc.common.base import progress


class SlowStream:
  """A stream that yields to other threads inside every write."""

  def __init__(self):
    self.chunks = []

  def write(self, text):
    time.sleep(0.0002)
    self.chunks.append(text)

  def flush(self):
    pass


class WriteLineTest(absltest.TestCase):

  def test_two_threads_never_glue_lines(self):
    stream = SlowStream()
    lines = {t: [f'[branch {t}] stage {i}: elapsed 0m01s' for i in range(200)]
             for t in 'ab'}

    def writer(t):
      for line in lines[t]:
        progress.write_line(line, stream)

    threads = [threading.Thread(target=writer, args=(t,)) for t in lines]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    got = ''.join(stream.chunks).split('\n')
    self.assertEqual(got[-1], '')
    self.assertCountEqual(got[:-1], lines['a'] + lines['b'])
    # Each thread's lines in its own order.
    for t in lines:
      self.assertEqual([l for l in got if l.startswith(f'[branch {t}]')],
                       lines[t])


class ProgressTest(absltest.TestCase):

  def test_line(self):
    p = progress.Progress(200, 'steps', 'train')
    p.start -= 10.0  # 10 s ago: 50 steps in 10 s, 150 left at 5 per s.
    self.assertRegex(p.line(50, 'loss 0.1'),
                     r'^\[train\] 50/200 steps \(25%\), elapsed 0m1\ds, '
                     r'left ~0m[23]\ds \| loss 0\.1$')


if __name__ == '__main__':
  absltest.main()
