"""Beam's DaskRunner for stemforge: a run on a `dask.distributed` cluster (a LocalCluster, or SLURM and
Kubernetes through dask-jobqueue / dask-kubernetes), with `--runner=DaskRunner --dask_client_address=...`.

Beam's DaskRunner (apache-beam 2.77) lacks two ParDo features that stemforge's graph, like most real ones,
relies on, and it has no metrics:

- tagged outputs: it keeps one bag per transform, so a multi-output ParDo's tagged outputs (the error
  records, the committed-track records) arrive in its main output;
- outputs of ``finish_bundle``: it collects a bundle's outputs before calling ``finish_bundle``, so
  what a DoFn emits there (the shards WriteShards publishes at the end of a bundle) is silently lost.

``StemforgeDaskRunner`` is Beam's runner with a ParDo translation that collects outputs after
``finish_bundle`` and keeps each output's tag, and a graph visitor that hands every consumer the bag of
the tag it reads. Everything else (Create, GroupByKey, Flatten, side inputs, the client) is Beam's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.pipeline import AppliedPTransform
from apache_beam.pvalue import TaggedOutput
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
from apache_beam.runners.dask import dask_runner, transform_evaluator
from apache_beam.runners.dask.transform_evaluator import DaskBagWindowedIterator, get_windowed_value
from apache_beam.transforms.sideinputs import SideInputMap


class _Out(NamedTuple):
    """One ParDo output and the tag it was emitted with (None: the main output)."""

    tag: str | None
    value: Any


def _run_bundle(items: Any, transform: beam.ParDo, window_fn: Any, side_inputs: Any) -> list[_Out]:
    """One Dask partition as one bundle: setup, process every element, finish_bundle, teardown; then the
    outputs of all of them, each with its tag."""
    receivers = transform_evaluator.OneReceiver()
    handler = _OutputHandler(window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    args, kwargs = transform.raw_side_inputs
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(transform.fn), handler, context=DoFnContext(transform.label, state=None),
        side_inputs=side_inputs, input_args=list(args), input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=beam.DoFn.BundleFinalizerParam())
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return [_Out(v.tag, v.value.value) if isinstance(v, TaggedOutput) else _Out(None, v.value)
            for v in receivers.values]


class _TaggedParDo(transform_evaluator.DaskBagOp):
    """A ParDo whose bag holds every output as ``_Out(tag, value)``."""

    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        return input_bag.map(get_windowed_value, window_fn).map_partitions(
            _run_bundle, self.transform, window_fn, side_inputs)


def _select(outputs: list[Any], tag: str | None) -> list[Any]:
    return [out.value for out in outputs if out.tag == tag]


TRANSLATIONS = {**transform_evaluator.TRANSLATIONS, beam.ParDo: _TaggedParDo}


@dataclasses.dataclass
class _Visitor(beam.pipeline.PipelineVisitor):
    """Beam's DaskBagVisitor, except that a consumer of a ParDo gets the bag of the tag it reads."""

    bag_kwargs: dict[str, Any]
    bags: dict[AppliedPTransform, Any] = dataclasses.field(default_factory=dict)
    tagged: set[AppliedPTransform] = dataclasses.field(default_factory=set)

    def _bag(self, value: pvalue.PValue) -> Any:
        bag = self.bags[value.producer]
        if value.producer in self.tagged:
            tag = next(t for t, output in value.producer.outputs.items() if output is value)
            return bag.map_partitions(_select, None if tag in (None, "None") else tag)
        return bag

    def visit_transform(self, node: AppliedPTransform) -> None:
        op = TRANSLATIONS.get(node.transform.__class__, transform_evaluator.NoOp)(node, bag_kwargs=self.bag_kwargs)
        inputs = [self._bag(v) for v in node.inputs if not isinstance(v, pvalue.PBegin) and v.producer in self.bags]
        kwargs: dict[str, Any] = {"input_bag": None, "side_inputs": None}
        if inputs:
            single = len(inputs) == 1 and not isinstance(op, transform_evaluator.Flatten)
            kwargs["input_bag"] = inputs[0] if single else inputs
        if node.side_inputs:
            kwargs["side_inputs"] = [
                SideInputMap(type(si), si._view_options(),
                             DaskBagWindowedIterator(self._bag(si.pvalue), si._window_mapping_fn))
                for si in node.side_inputs]
        self.bags[node] = op.apply(**kwargs)
        if isinstance(op, _TaggedParDo):
            self.tagged.add(node)


class StemforgeDaskRunner(dask_runner.DaskRunner):
    """Beam's DaskRunner with tagged outputs and finish_bundle outputs (see the module docstring)."""

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs: dict[str, Any] | None = None) -> beam.pipeline.PipelineVisitor:
        return _Visitor(bag_kwargs or {})
