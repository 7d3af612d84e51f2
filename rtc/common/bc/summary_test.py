"""Tests for rtc.common.bc.summary."""

from absl.testing import absltest
from tensorboard.backend.event_processing import event_accumulator

from rtc.common.bc import summary


class SummaryTest(absltest.TestCase):

  def test_scalars_read_back(self):
    logdir = self.create_tempdir().full_path
    with summary.SummaryWriter(logdir) as w:
      w.write(0, {'train/loss': 1.5, 'eval/solved': 0.25})
      w.write(10, {'train/loss': 0.5})
    got = summary.read_scalars(logdir)
    self.assertEqual(got['train/loss'], [(0, 1.5), (10, 0.5)])
    self.assertEqual(got['eval/solved'], [(0, 0.25)])
    # They are tensor summaries: Scalars() shows nothing, Tensors() has them.
    acc = event_accumulator.EventAccumulator(logdir)
    acc.Reload()
    self.assertEqual(acc.Tags()['scalars'], [])
    self.assertIn('train/loss', acc.Tags()['tensors'])


if __name__ == '__main__':
  absltest.main()
