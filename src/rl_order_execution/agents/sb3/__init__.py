"""Stable-Baselines3's PPO (kind "ppo") and SAC (kind "sac") on the continuous speed.

`env` (our batched market as an SB3 VecEnv, and the learner's reward as a wrapper), `agent` (a
policy behind our Agent seam and in our checkpoint format), `training` (the loop around SB3's
`learn`: our tags, validation, keep-best, checkpoints), `state` (SB3's training state for
resume.pt), `spec` (what every SB3 algorithm shares: training, restore, its AgentSpec), `ppo` and
`sac` (only what sets each apart: its builder, policy shape, search space and, for SAC, reward
unit). Nothing here imports SB3 until an SB3 agent is trained or loaded.
"""
