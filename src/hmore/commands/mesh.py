"""Regress Anny body meshes from people's 2D keypoints: ``hmore mesh INPUT -o OUT``.

INPUT is what ``hmore lift`` reads: a keypoint file (COCO, AlphaPose, OpenPose, pyskl, hmore ``priors.npz``), a
generated clip ``.npz`` or a video (through the pose priors). The mesh head (MotionBERT's third head on the DSTformer
backbone, trained on generated Anny bodies) gives every person an Anny pose per frame and a phenotype. Writes
OUT/meshes.npz (per-frame meshes), OUT/person<k>_frame<n>.obj, OUT/preview.mp4 (meshes over the input) and
OUT/index.html. Needs the body extra (anny).
"""

from __future__ import annotations

import argparse

from hmore.commands.lift import add_input_arguments

HELP = "regress Anny body meshes from 2D keypoints (file, generated clip or video)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_arguments(p, default_weights="dstformer_mesh_cpu_h36m")
    p.add_argument("--obj-frame", type=int, default=None, help="frame written as .obj (default: the middle one)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: the longer side)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="skip test-time flip averaging")
    p.add_argument("--no-video", dest="video", action="store_false", help="skip the preview video")


def run(args: argparse.Namespace) -> int:
    from hmore.io.atomic import check_output_dir
    from hmore.lift.pipeline import load_lifter
    from hmore.mesh.infer import DEFAULT_WEIGHTS, mesh_file
    from hmore.models.motion.mesh import MeshRegressor

    check_output_dir(args.out)
    model = load_lifter(weights=args.weights or DEFAULT_WEIGHTS, checkpoint=args.checkpoint, kinds=(MeshRegressor,),
                        what="a mesh regressor")
    name = str(args.checkpoint) if args.checkpoint else (args.weights or DEFAULT_WEIGHTS)
    res = mesh_file(args.input, args.out, model=model, size=args.size, fps=args.fps, obj_frame=args.obj_frame,
                    flip=args.flip, focal=args.focal, video=args.video, model_name=name)
    print(f"mesh: {res.num_people} people x {res.num_frames} frames in {res.seconds:.2f} s -> {res.meshes}")
    print(f"  {', '.join(str(o) for o in res.objs)}")
    print(f"  open {res.index}")
    return 0
