using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Bittensor.Neurons.Roles;

namespace Bittensor.Neurons.Tests;

public sealed class NeuronActorTests() : TestKit("akka.loglevel = OFF\nakka.test.single-expect-default = 30s")
{
    /// <summary>Answers "ping" with "pong", throws on "boom"; tells the probe when it restarts.</summary>
    internal sealed class Part : ReceiveActor
    {
        private readonly IActorRef _probe;

        public Part(IActorRef probe, bool failAtStart)
        {
            _probe = probe;
            if (failAtStart) throw new InvalidOperationException("cannot start");
            Receive<string>(m => m == "ping", _ => Sender.Tell("pong"));
            Receive<string>(m => m == "boom", _ => throw new InvalidOperationException("boom"));
        }

        public static Props Props(IActorRef probe, bool failAtStart = false) => Akka.Actor.Props.Create(() => new Part(probe, failAtStart));

        protected override void PreRestart(Exception reason, object message)
        {
            _probe.Tell("restarting");
            base.PreRestart(reason, message);
        }
    }

    private async Task<IActorRef> Child(IActorRef neuron, string name, Props props, bool critical) =>
        await NeuronActors.StartChildAsync(neuron, name, props, critical, CancellationToken.None);

    [Fact]
    public async Task A_child_that_throws_while_running_is_restarted_alone_under_its_name()
    {
        var probe = CreateTestProbe();
        var neuron = await NeuronActors.CreateAsync(Sys, "server", "5Test");
        var axon = await Child(neuron, "axon", Part.Props(probe), critical: true);
        var model = await Child(neuron, "model", Part.Props(probe), critical: true);
        Watch(neuron);

        axon.Tell("boom");
        await probe.ExpectMsgAsync("restarting");

        Assert.Equal("/user/bittensor/server-5Test/axon", axon.Path.ToStringWithoutAddress());
        Assert.Equal("pong", await axon.Ask<string>("ping", TimeSpan.FromSeconds(20)));
        Assert.Equal("pong", await model.Ask<string>("ping", TimeSpan.FromSeconds(20)));
        await probe.ExpectNoMsgAsync(TimeSpan.Zero); // the model was not restarted with it
    }

    [Fact]
    public async Task A_critical_child_that_cannot_start_stops_the_neuron()
    {
        var probe = CreateTestProbe();
        var neuron = await NeuronActors.CreateAsync(Sys, "server", "5Critical");
        Watch(neuron);

        var axon = await Child(neuron, "axon", Part.Props(probe, failAtStart: true), critical: true);

        await ExpectTerminatedAsync(neuron);
        Assert.Equal("axon", axon.Path.Name);
    }

    [Fact]
    public async Task A_child_that_is_not_critical_may_stop_without_stopping_the_neuron()
    {
        var probe = CreateTestProbe();
        var neuron = await NeuronActors.CreateAsync(Sys, "validator", "5Optional");
        var extra = await Child(neuron, "extra", Part.Props(probe, failAtStart: true), critical: false);
        Watch(extra);
        await ExpectTerminatedAsync(extra);

        var metagraph = await Child(neuron, "metagraph", Part.Props(probe), critical: true);
        Assert.Equal("pong", await metagraph.Ask<string>("ping", TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task A_taken_child_name_is_answered_with_a_failure_and_the_running_child_keeps_going()
    {
        var probe = CreateTestProbe();
        var neuron = await NeuronActors.CreateAsync(Sys, "miner", "5Twice");
        var axon = await Child(neuron, "axon", Part.Props(probe), critical: true);

        await Assert.ThrowsAsync<InvalidActorNameException>(() => Child(neuron, "axon", Part.Props(probe), critical: true));

        Assert.Equal("pong", await axon.Ask<string>("ping", TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Two_neurons_of_one_hotkey_and_role_get_distinct_names_under_the_runtime_guardian()
    {
        var first = await NeuronActors.CreateAsync(Sys, "server", "5Same");
        var second = await NeuronActors.CreateAsync(Sys, "server", "5Same");
        Assert.Equal("server-5Same", first.Path.Name);
        Assert.Equal("server-5Same-2", second.Path.Name);
        Assert.Equal("/user/bittensor/server-5Same", first.Path.ToStringWithoutAddress());
    }

    [Fact]
    public void The_strategy_stops_what_cannot_start_or_was_killed_and_restarts_the_rest()
    {
        Assert.Equal(Directive.Stop, NeuronActor.Decide(new ActorInitializationException("x")));
        Assert.Equal(Directive.Stop, NeuronActor.Decide(new ActorKilledException("x")));
        Assert.Equal(Directive.Restart, NeuronActor.Decide(new InvalidOperationException("x")));
        Assert.Equal(Directive.Restart, NeuronActor.Decide(new IOException("x")));
    }
}
